"""`agentskiller view`: the viewer of an output directory, written or served."""

from __future__ import annotations

import json
import re
import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from flows.cli import main
from tasks.rollout_viewer import (
    NoRollouts,
    load_viewer_inputs,
    viewer_page,
    viewer_server,
)
from tasks.store.paths import (
    EVALUATION_RESULTS_RELPATH,
    EVALUATION_VIEWER_RELPATH,
    OutputLayout,
    rollouts_relpath,
)
from tests import rollout_fixtures as fx
from tests.processes import python_child

DATA_BLOCK = re.compile(r'id="viewer-data">(.*?)</script>', re.S)


def _data(page: str) -> dict:
    [block] = DATA_BLOCK.findall(page)
    return json.loads(block)


def test_inputs_join_rollouts_results_and_the_golden_tasks_of_their_queries(
    tmp_path: Path,
):
    """Every rollout and result is read; each query's task comes from the store
    through the query's lineage; a rollout of an unknown query has none."""
    inputs = load_viewer_inputs(fx.write_run(tmp_path))
    assert len(inputs.rollouts) == 5 and len(inputs.results) == 4
    assert inputs.tasks_by_query == fx.golden_tasks()
    assert inputs.skipped == {}


def test_without_evaluation_results_every_rollout_shows_as_not_evaluated(tmp_path):
    """The viewer does not need `evaluation/results.jsonl`."""
    page = viewer_page(fx.write_run(tmp_path, evaluated=False))
    assert {r["outcome"] for r in _data(page)["rollouts"]} == {"unevaluated"}


def test_unreadable_lines_and_tasks_are_counted_in_the_page(tmp_path: Path):
    """A torn rollout line, a broken result line and a query whose task object is
    gone are each counted by reason; the rest is shown."""
    layout = fx.write_run(tmp_path)
    with layout.export_path(rollouts_relpath(fx.CLINIC)).open("a") as f:
        f.write('{"id": "q-cancel", "tri')
    with layout.export_path(EVALUATION_RESULTS_RELPATH).open("a") as f:
        f.write("oops\n")
    [task_object] = [
        p
        for p in layout.objects_dir.rglob("*.json")
        if json.loads(p.read_text())["id"] == "q-book"
    ]
    task_object.unlink()
    data = _data(viewer_page(layout))
    assert data["skipped"] == {
        "results invalid_json": 1,
        "truncated_line": 1,
        "unreadable golden task": 1,
    }
    assert len(data["rollouts"]) == 5


def test_an_output_directory_without_rollouts_is_refused(tmp_path: Path):
    """Nothing to show is an error naming the folder searched."""
    with pytest.raises(NoRollouts, match=r"rollouts/\*\.jsonl"):
        load_viewer_inputs(OutputLayout(tmp_path))


def test_view_writes_the_viewer_into_the_evaluation_folder(tmp_path: Path, capsys):
    """By default the page goes to `evaluation/viewer.html`."""
    layout = fx.write_run(tmp_path)
    assert main(["view", "--output-dir", str(tmp_path)]) == 0
    written = layout.export_path(EVALUATION_VIEWER_RELPATH)
    assert _data(written.read_text(encoding="utf-8"))["rollouts"]
    assert f"viewer written to {written}" in capsys.readouterr().out


def test_view_writes_where_asked(tmp_path: Path):
    """`--write FILE` chooses the file (its folder is created)."""
    fx.write_run(tmp_path / "out")
    target = tmp_path / "elsewhere" / "page.html"
    argv = ["view", "--output-dir", str(tmp_path / "out"), "--write", str(target)]
    assert main(argv) == 0
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert not (tmp_path / "out" / EVALUATION_VIEWER_RELPATH).exists()


def test_view_of_a_directory_without_rollouts_is_bad_input(tmp_path: Path, capsys):
    """Exit 2 with one `error:` line, no traceback, nothing written."""
    assert main(["view", "--output-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: no readable rollouts in ")
    assert not (tmp_path / EVALUATION_VIEWER_RELPATH).exists()


def test_the_server_serves_the_page_and_nothing_else():
    """GET / and /viewer.html give the page; any other path is 404."""
    server = viewer_server("<!doctype html><p>hi</p>", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for path in ("/", "/viewer.html?x=1"):
            with urllib.request.urlopen(base + path, timeout=10) as answer:
                assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
                assert answer.read() == b"<!doctype html><p>hi</p>"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(base + "/../evaluation/results.jsonl", timeout=10)
        assert denied.value.code == 404
        denied.value.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.slow
def test_view_serve_serves_the_written_page_until_ctrl_c(tmp_path: Path):
    """`--serve --port 0` writes the page, serves the same bytes on 127.0.0.1 and
    exits 0 on SIGINT."""
    layout = fx.write_run(tmp_path)
    code = (
        "import sys\nfrom flows.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    )
    argv = ["view", "--output-dir", str(tmp_path), "--serve", "--port", "0"]
    with python_child(code, *argv) as child:
        assert child.stdout is not None
        lines = [child.stdout.readline(), child.stdout.readline()]
        url = re.search(r"http://127\.0\.0\.1:\d+/", lines[1])
        assert url, lines
        with urllib.request.urlopen(url.group(0), timeout=10) as answer:
            served = answer.read()
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=30) == 0
    written = layout.export_path(EVALUATION_VIEWER_RELPATH).read_bytes()
    assert served == written

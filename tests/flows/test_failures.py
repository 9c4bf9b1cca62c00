"""Bad input at run time: a missing cassette entry and an unreachable endpoint stop
the run with a clear message, and a later run redoes only what did not finish; a
step that produces nothing starves the run (exit 3); failed items are asked again
when their settings change or with --retry-failed."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from flows.cli import main
from flows.pipeline import _markdown
from schemas.report import RunReport
from tasks.store.paths import OutputLayout
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG

pytestmark = pytest.mark.slow


def _config(tmp_path, **llm_changes):
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    data["llm"].update(llm_changes)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_cassette_miss_stops_the_step_and_resume_redoes_only_the_missing_item(
    prefect_harness, tmp_path, capsys
):
    """The miss names its call key; the next run makes exactly the one missing call."""
    partial = tmp_path / "partial"
    shutil.copytree(DEMO_CASSETTE, partial)
    part = partial / "s01-s05.yaml"
    cassette = yaml.safe_load(part.read_text())
    del cassette["calls"]["s02/batch-001"]
    part.write_text(yaml.safe_dump(cassette))
    out, first, second = tmp_path / "out", tmp_path / "r1.json", tmp_path / "r2.json"
    cfg = _config(tmp_path, cassette=str(partial))
    args = ["--output-dir", str(out), "--until", "s02"]
    assert main(["run", "--config", str(cfg), *args, "--report-json", str(first)]) == 1
    report = json.loads(first.read_text())
    assert report["status"] == "failed"
    failures = report["steps"]["s02_entity_extraction"]["failures"]
    assert [(f["item_key"], f["reason"]) for f in failures] == [
        ("batch-001", "cassette_miss")
    ]
    assert "s02/batch-001" in report["error"] + failures[0]["message"]
    assert "s02/batch-001" in capsys.readouterr().out
    full = _config(tmp_path)
    assert (
        main(["run", "--config", str(full), *args, "--report-json", str(second)]) == 0
    )
    again = json.loads(second.read_text())
    assert again["llm_calls"] == 1
    assert again["steps"]["s01_domain_expansion"]["cached"] == 4
    assert again["steps"]["s02_entity_extraction"]["cached"] == 1


def test_unreachable_endpoint_ends_the_run_with_a_clear_error(
    prefect_harness, tmp_path, monkeypatch, capsys
):
    """A closed port gives llm_unreachable naming the endpoint, and exit code 1."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    roles = {
        "textual": {"model": "m", "base_url": "http://127.0.0.1:9/v1"},
        "coding": {"model": "m", "base_url": "http://127.0.0.1:9/v1"},
    }
    cfg = _config(
        tmp_path, mode="live", cassette=None, transport_retries=0, roles=roles
    )
    report_path = tmp_path / "report.json"
    code = main(
        [
            "run",
            "--config",
            str(cfg),
            "--output-dir",
            str(tmp_path / "out"),
            "--step",
            "s01",
            "--report-json",
            str(report_path),
        ]
    )
    assert code == 1
    report = json.loads(report_path.read_text())
    [failure] = report["steps"]["s01_domain_expansion"]["failures"]
    assert failure["reason"] == "llm_unreachable"
    assert "127.0.0.1:9" in failure["message"]
    assert "stopped" in capsys.readouterr().err


BROKEN = [{"raw_arguments": '{"subfields": ["air'}] * 3
"""An entity batch answer that never parses, for every attempt."""


def _cassette_variant(tmp_path, **calls):
    """The demo cassette with some s01-s05 call keys answered differently."""
    folder = tmp_path / "cassette"
    shutil.copytree(DEMO_CASSETTE, folder)
    part = folder / "s01-s05.yaml"
    cassette = yaml.safe_load(part.read_text())
    cassette["calls"].update(calls)
    part.write_text(yaml.safe_dump(cassette))
    return folder


def test_a_step_that_produces_nothing_starves_the_run_with_exit_code_3(
    prefect_harness, tmp_path, capsys
):
    """s02 yields no entities: status starved, its failed items named, rest skipped."""
    broken = {"s02/batch-000": BROKEN, "s02/batch-001": BROKEN}
    cfg = _config(tmp_path, cassette=str(_cassette_variant(tmp_path, **broken)))
    report_path = tmp_path / "report.json"
    out = ["--output-dir", str(tmp_path / "out"), "--until", "s05"]
    code = main(["run", "--config", str(cfg), *out, "--report-json", str(report_path)])
    assert code == 3
    report = json.loads(report_path.read_text())
    assert (report["status"], report["starved_by"]) == ("starved", "s02")
    s02 = report["steps"]["s02_entity_extraction"]
    assert (s02["status"], s02["inputs"], s02["outputs"]) == ("starved", 6, 0)
    assert [(f["item_key"], f["reason"]) for f in s02["failures"]] == [
        ("batch-000", "invalid_output"),
        ("batch-001", "invalid_output"),
    ]
    assert report["error"].startswith(
        "step s02_entity_extraction produced nothing usable from 6 input(s) "
        "(0 entities from 2 batch(es)), so the steps after it were skipped. Its 2 "
        "failed item(s): [invalid_output] batch-000: "
    )
    assert "--retry-failed" in report["error"]
    for name in ("s03_entity_graph", "s04_blueprint_generation"):
        skipped = report["steps"][name]
        assert (skipped["status"], skipped["note"]) == (
            "skipped",
            "skipped: starved by s02",
        )
    assert report["steps"]["s01_domain_expansion"]["status"] == "done"
    markdown = _markdown(RunReport.model_validate(report))
    assert markdown.startswith("# AgentSkiller run `demo`: starved\n")
    assert "**Starved:** step s02_entity_extraction produced nothing usable" in (
        markdown
    )
    assert "| s03_entity_graph | 0 | 0 | 0 | 0 | 0.0 | skipped: starved by s02 |" in (
        markdown
    )
    assert "produced nothing usable" in capsys.readouterr().err


def _call_keys(out, report) -> list[str]:
    """Call keys of every model call the run made, from its usage ledger."""
    ledger = OutputLayout(out).ledger_dir / f"{report['flow_run_id']}.jsonl"
    if not ledger.exists():
        return []
    return [json.loads(line)["call_key"] for line in ledger.read_text().splitlines()]


def test_failed_items_are_asked_again_with_retry_failed_or_changed_settings(
    prefect_harness, tmp_path
):
    """A cached failure stays cached, until --retry-failed or a settings change."""
    cassette = str(_cassette_variant(tmp_path, **{"s02/batch-000": BROKEN}))
    out = tmp_path / "out"
    runs = iter(range(100))

    def run(config, *extra):
        path = tmp_path / f"report-{next(runs)}.json"
        args = ["--output-dir", str(out), "--until", "s02", "--report-json", str(path)]
        code = main(["run", "--config", str(config), *args, *extra])
        report = json.loads(path.read_text())
        return code, report, _call_keys(out, report)

    cfg = _config(tmp_path, cassette=cassette)
    code, first, _ = run(cfg)
    assert code == 0
    [failure] = first["steps"]["s02_entity_extraction"]["failures"]
    assert (failure["item_key"], failure["reason"]) == ("batch-000", "invalid_output")
    assert run(cfg)[2] == []
    code, retried, calls = run(cfg, "--retry-failed")
    assert code == 0
    assert calls == ["s02/batch-000"] * 3
    assert retried["steps"]["s01_domain_expansion"]["cached"] == 4
    assert retried["steps"]["s02_entity_extraction"]["cached"] == 2
    assert run(cfg)[2] == []
    cfg = _config(tmp_path, cassette=cassette, validation_retries=2)
    assert run(cfg)[2].count("s02/batch-000") == 2
    assert run(cfg)[2] == []
    data = yaml.safe_load(cfg.read_text())
    data["llm"]["roles"]["textual"]["max_tokens"] = 4096
    cfg.write_text(yaml.safe_dump(data))
    assert run(cfg)[2].count("s02/batch-000") == 2

"""The demo world run into `s3://bucket/prefix` through the CLI, as a user runs it,
against a real S3-compatible server (moto's standalone server on 127.0.0.1).

One S3 run, its re-run and one local run of the same configuration are shared by
the tests of this module: the run ends ok, the re-run makes no model call, `status`
and `lineage` read the bucket, and everything the run wrote equals the local run's
output byte for byte, except what names a run or a location (listed below). Bad
storage (a missing bucket, an unreachable endpoint, a folder that cannot be
written) is refused before any work starts, with exit code 2.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from tasks.store.artifacts import ArtifactStore
from tasks.store.location import RemotePath
from tasks.store.paths import OutputLayout
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG, ancestor_kinds
from tests.s3_server import (
    SETUP_REQUESTS,
    create_bucket,
    free_port,
    moto_s3,
    read_only_user,
    s3_env,
)

pytestmark = pytest.mark.slow

BUCKET = "agentskiller-demo"
URL = f"s3://{BUCKET}/runs/demo"


def _run(*args: str, report: Path) -> dict:
    code = main(
        ["run", "--config", str(DEMO_CONFIG), *args, "--report-json", str(report)]
    )
    data = json.loads(report.read_text())
    assert code == 0, data.get("error")
    return data


@pytest.fixture(scope="module")
def runs(prefect_harness, s3_endpoint, tmp_path_factory):
    """The S3 run, its re-run and a local run: (reports, local output dir)."""
    home = tmp_path_factory.mktemp("s3-demo")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3_env(s3_endpoint, home).items():
            patch.setenv(name, value)
        patch.setenv("AGENTSKILLER_STATE_DIR", str(home / "state"))
        create_bucket(s3_endpoint, BUCKET)
        local = home / "local"
        # the local run first, so the S3 run is the one recorded as the last run
        here = _run("--output-dir", str(local), report=home / "local.json")
        first = _run("--output-dir", URL, report=home / "first.json")
        again = _run("--output-dir", URL, report=home / "again.json")
        yield {"first": first, "again": again, "local": here}, local, home


def _remote() -> RemotePath:
    root = OutputLayout.at(URL).root
    assert isinstance(root, RemotePath)
    return root


def _remote_files(root: RemotePath) -> dict[str, bytes]:
    return {
        p.partition(root.key + "/")[2]: root.fs.cat_file(p)
        for p in root.fs.find(root.key)
    }


def test_demo_runs_into_s3_and_ends_ok(runs) -> None:
    """The run writes the reference layout under the prefix, leaves no temporary
    object and no lock behind, and reports the URL as its output."""
    reports, _, _ = runs
    first = reports["first"]
    assert first["status"] == "ok" and first["llm_calls"] > 0
    assert first["output_dir"] == URL
    keys = set(_remote_files(_remote()))
    for name in ("domain_topics.json", "entities.json", "blueprints.json"):
        assert name in keys
    assert "mcp_servers/CardServices.py" in keys
    assert any(k.startswith(".agentskiller/lancedb/domains.lance/") for k in keys)
    assert any(k.startswith(".agentskiller/prefect-results/") for k in keys)
    assert not [k for k in keys if k.endswith(".tmp")]
    assert ".agentskiller/run.lock" not in keys


def test_rerun_from_s3_makes_no_model_calls(runs) -> None:
    """Every item of the second run is a cache hit read from the bucket."""
    reports, _, _ = runs
    first, again = reports["first"], reports["again"]
    assert again["status"] == "ok" and again["llm_calls"] == 0
    for name, step in again["steps"].items():
        assert step["cached"] == step["items"], name
        assert step["ok"] == first["steps"][name]["ok"], name


def test_status_and_lineage_read_the_s3_location(runs, capsys, monkeypatch) -> None:
    """`status` finds the bucket as the last run's output and by --output-dir;
    `lineage` traces a tool list in the bucket back to the seed domains."""
    _, _, home = runs
    monkeypatch.setenv("AGENTSKILLER_STATE_DIR", str(home / "state"))
    capsys.readouterr()
    assert main(["status", "--output-dir", URL]) == 0
    shown = capsys.readouterr().out
    assert f"output directory: {URL}" in shown
    assert re.search(r"^s09_mcp_server_implementation +done", shown, re.MULTILINE)
    assert "FlightBooking" in shown  # the scripted s09 failure is listed
    assert main(["status"]) == 0
    assert f"reading {URL} (the last run's output" in capsys.readouterr().out
    target = "tool_lists/CardServices.json"
    assert main(["lineage", "--output-dir", URL, target]) == 0
    tree = capsys.readouterr().out
    assert tree.startswith("tool_list CardServices")
    assert "seed_domains seeds" in tree
    monkeypatch.setenv("AGENTSKILLER_STATE_DIR", str(home / "no-state"))
    assert main(["lineage", f"{URL}/{target}"]) == 0  # the URL names its store
    assert capsys.readouterr().out == tree
    store = ArtifactStore(OutputLayout.at(URL))
    assert {"blueprint", "entity", "domain", "seed_domains"} <= ancestor_kinds(
        store, target
    )


# Files that name a run or a location, so they differ between any two runs:
# lineage records carry the run's flow and task run ids; step manifests the output
# location's id and the configuration hash (which includes run.output_dir); Prefect
# result records the id of the storage block of their location; LanceDB names its
# data and transaction files with random ids; output-id is random; ledgers and
# reports are named by run id; the local run lock is an empty file after the run,
# while the S3 lock object is deleted. Each is compared below without those fields.
_COMPARED_APART = (
    ".agentskiller/lineage/",
    ".agentskiller/steps/",
    ".agentskiller/prefect-results/",
    ".agentskiller/lancedb/",
    ".agentskiller/ledger/",
    ".agentskiller/reports/",
    ".agentskiller/output-id",
    ".agentskiller/run.lock",
)


def _without(data: bytes, *fields: str) -> dict:
    loaded = json.loads(data)
    for field in fields:
        loaded.pop(field)
    return loaded


def test_s3_outputs_equal_the_local_runs_byte_for_byte(runs) -> None:
    """Exports and artifact objects are byte-identical; lineage records, manifests
    and result records are equal apart from the run- and location-specific fields."""
    _, local, _ = runs
    remote = _remote_files(_remote())
    on_disk = {
        p.relative_to(local).as_posix(): p.read_bytes()
        for p in local.rglob("*")
        if p.is_file()
    }

    def plain(files: dict[str, bytes]) -> dict[str, bytes]:
        return {k: v for k, v in files.items() if not k.startswith(_COMPARED_APART)}

    assert sorted(plain(remote)) == sorted(plain(on_disk))
    assert len(plain(remote)) > 150
    for key, data in plain(remote).items():
        assert data == on_disk[key], key

    def under(files: dict[str, bytes], prefix: str) -> dict[str, bytes]:
        return {k: v for k, v in files.items() if k.startswith(prefix)}

    for prefix, fields in (
        (".agentskiller/lineage/", ("run",)),
        (".agentskiller/steps/", ("output_id", "config_hash")),
    ):
        ours, theirs = under(remote, prefix), under(on_disk, prefix)
        assert sorted(ours) == sorted(theirs) and ours, prefix
        for key, data in ours.items():
            assert _without(data, *fields) == _without(theirs[key], *fields), key
    ours = under(remote, ".agentskiller/prefect-results/")
    theirs = under(on_disk, ".agentskiller/prefect-results/")
    assert sorted(ours) == sorted(theirs) and ours
    for key, data in ours.items():
        assert json.loads(data)["result"] == json.loads(theirs[key])["result"], key


def test_lancedb_table_in_the_bucket_holds_the_local_runs_rows(runs) -> None:
    """The domains table read from S3 has the local run's ids, texts and vectors."""
    import lancedb

    from tasks.settings import environment
    from tasks.store.location import lance_storage_options

    _, local, _ = runs
    layout = OutputLayout.at(URL)
    options = lance_storage_options(layout.lancedb_dir, environment())
    remote = lancedb.connect(str(layout.lancedb_dir), storage_options=options)
    here = lancedb.connect(str(OutputLayout(local).lancedb_dir))
    ours = remote.open_table("domains").to_arrow().sort_by("id")
    theirs = here.open_table("domains").to_arrow().sort_by("id")
    assert ours.num_rows > 0
    assert ours.to_pylist() == theirs.to_pylist()


def test_server_staged_from_s3_serves_the_same_data_in_the_sandbox(
    runs, tmp_path
) -> None:
    """serve-env's staging brings a server down from the bucket; its sandboxed
    worker starts with the same database state as from the local run."""
    from tasks.runtime.serve import open_environment
    from tasks.store.staging import stage_server

    _, local, _ = runs
    staged = tmp_path / "staged"
    stage_server(OutputLayout.at(URL), "CardServices", staged)
    with open_environment(staged, "CardServices") as environment:
        from_s3 = environment.state_hash("default")
    with open_environment(local, "CardServices") as environment:
        from_disk = environment.state_hash("default")
    assert from_s3 == from_disk


def _config_with(tmp_path: Path, **run: object) -> Path:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    data["run"].update(run)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def test_missing_bucket_is_refused_before_any_work(s3_bucket, capsys) -> None:
    """Exit code 2; the message names the bucket, the location and the endpoint."""
    url = "s3://no-such-bucket/prefix"
    assert main(["run", "--config", str(DEMO_CONFIG), "--output-dir", url]) == 2
    err = capsys.readouterr().err
    assert f"output location {url}: bucket 'no-such-bucket' does not exist" in err
    assert "at endpoint http://127.0.0.1:" in err
    root = OutputLayout.at(url).root
    assert isinstance(root, RemotePath) and not root.fs.exists("no-such-bucket")


def test_unreachable_endpoint_is_refused_before_any_work(
    s3_bucket, tmp_path, capsys
) -> None:
    """An endpoint set in run.storage_options that nobody serves is named."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    config = _config_with(
        tmp_path, output_dir=URL, storage_options={"endpoint_url": endpoint}
    )
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"output location {URL}: cannot reach the storage at endpoint" in err
    assert endpoint in err


def test_unwritable_local_output_dir_is_refused_before_any_work(capsys) -> None:
    """A folder even root cannot write (sysfs) is named; nothing is created."""
    out = "/sys/agentskiller-demo-out"
    assert main(["run", "--config", str(DEMO_CONFIG), "--output-dir", out]) == 2
    assert f"output directory {out} is not writable" in capsys.readouterr().err
    assert not Path(out).exists()


def test_access_denied_is_refused_before_any_work(tmp_path, capsys) -> None:
    """On a server that enforces IAM, credentials that may only read the bucket
    are refused with exit code 2, naming the location and the endpoint."""
    with moto_s3(tmp_path, auth_after=SETUP_REQUESTS) as endpoint:
        key, secret = read_only_user(endpoint, "locked")
        options = {"endpoint_url": endpoint, "key": key, "secret": secret}
        url = "s3://locked/run"
        config = _config_with(tmp_path, output_dir=url, storage_options=options)
        assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"output location {url} is not writable: access denied at endpoint" in err
    assert endpoint in err

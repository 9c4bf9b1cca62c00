"""Runs that crash, or meet another run, leave an honest record behind."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from prefect import flow

from flows import pipeline
from flows.cli import main
from tasks.llm.ledger import read_ledger
from tasks.store.paths import OutputLayout
from tasks.store.run_lock import RunLocked, acquire_run_lock
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG

pytestmark = pytest.mark.slow


@flow(name="exploding-step")
def _exploding_step(run) -> None:
    raise OSError("No space left on device")


def _config(tmp_path):
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_crashing_step_still_writes_the_report_ledger_and_releases_the_lock(
    prefect_harness, tmp_path, monkeypatch, capsys
):
    """An unexpected exception gives status "error" in both report files, exit 1."""
    real = pipeline.step_flow
    monkeypatch.setattr(
        pipeline,
        "step_flow",
        lambda info: _exploding_step if info.id == "s02" else real(info),
    )
    out, report_json = tmp_path / "out", tmp_path / "report.json"
    args = ["run", "--config", str(_config(tmp_path)), "--output-dir", str(out)]
    assert main([*args, "--until", "s02", "--report-json", str(report_json)]) == 1
    report = json.loads(report_json.read_text())
    assert report["status"] == "error"
    assert report["error"] == (
        "step s02_entity_extraction crashed: OSError: No space left on device"
    )
    assert list(report["steps"]) == ["s01_domain_expansion"]
    layout = OutputLayout(out)
    [stored] = layout.reports_dir.glob("*.json")
    assert json.loads(stored.read_text()) == report
    ledger = read_ledger(layout.ledger_path(report["flow_run_id"]))
    assert len(ledger.entries) == report["llm_calls"] == 2
    assert layout.run_lock.read_text() == ""
    assert "No space left on device" in capsys.readouterr().err


def test_run_on_a_locked_output_exits_2_naming_the_holder(
    prefect_harness, tmp_path, capsys
):
    """While a live process holds the output location, a second run is refused."""
    out = tmp_path / "out"
    args = ["run", "--config", str(_config(tmp_path)), "--output-dir", str(out)]
    with acquire_run_lock(OutputLayout(out), run_id="first", command="first run"):
        assert main([*args, "--step", "s01"]) == 2
    err = capsys.readouterr().err
    assert f"is in use by another run: pid {os.getpid()}" in err
    assert "(run first), command: first run" in err
    assert not (out / "domain_topics.json").exists()


def test_pipeline_flow_takes_the_lock_itself(prefect_harness, tmp_path):
    """A run started without the CLI (a deployment) is refused by the flow."""
    out = tmp_path / "out"
    with acquire_run_lock(OutputLayout(out), run_id="first", command="first run"):
        with pytest.raises(RunLocked, match="in use by another run"):
            pipeline.run_pipeline(
                config_path=str(_config(tmp_path)), output_dir=str(out), step="s01"
            )
    assert not (out / "domain_topics.json").exists()


def _run(config, out, *extra, report=None):
    args = ["run", "--config", str(config), "--output-dir", str(out), *extra]
    return main([*args, "--report-json", str(report)] if report else args)


def test_foreign_or_corrupt_manifest_stops_the_run_naming_the_file(
    prefect_harness, tmp_path, capsys
):
    """An s01 manifest copied from another output, or torn, stops s02 with exit 1."""
    config, mine, other = _config(tmp_path), tmp_path / "mine", tmp_path / "other"
    report = tmp_path / "report.json"
    assert _run(config, mine, "--until", "s01") == 0
    assert _run(config, other, "--until", "s01") == 0
    manifest = OutputLayout(mine).manifest_path("s01_domain_expansion")
    foreign = OutputLayout(other).manifest_path("s01_domain_expansion")
    manifest.write_bytes(foreign.read_bytes())
    assert _run(config, mine, "--step", "s02", report=report) == 1
    error = json.loads(report.read_text())["error"]
    assert error.startswith(
        f"step manifest {manifest} is unusable: it was written for another output "
        "location"
    )
    manifest.write_bytes(foreign.read_bytes()[:100])
    assert _run(config, mine, "--step", "s02", report=report) == 1
    error = json.loads(report.read_text())["error"]
    assert error.startswith(f"step manifest {manifest} is unusable: not JSON")
    capsys.readouterr()
    assert main(["status", "--output-dir", str(mine)]) == 0
    [line] = [x for x in capsys.readouterr().out.splitlines() if "s01_" in x]
    assert line.split()[:2] == ["s01_domain_expansion", "invalid"]
    assert f"--config {config} --step s01" in error
    assert not (mine / "entities.json").exists()


def test_truncated_object_stops_the_run_and_rerunning_its_step_repairs_it(
    prefect_harness, tmp_path
):
    """A torn object file is named; re-running the step that made it rewrites it."""
    config, out, report = _config(tmp_path), tmp_path / "out", tmp_path / "r.json"
    assert _run(config, out, "--until", "s01") == 0
    layout = OutputLayout(out)
    manifest = json.loads(layout.manifest_path("s01_domain_expansion").read_text())
    domain = next(r for r in manifest["outputs"] if r["kind"] == "domain")
    path = layout.object_path(domain["content_hash"])
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    assert _run(config, out, "--step", "s02", report=report) == 1
    error = json.loads(report.read_text())["error"]
    assert error.startswith(f"artifact object {path} is corrupt: not JSON")
    assert _run(config, out, "--step", "s01", report=report) == 0
    assert json.loads(report.read_text())["llm_calls"] == 0
    assert path.read_bytes() == good
    assert _run(config, out, "--step", "s02") == 0

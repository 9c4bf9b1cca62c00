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
from tasks.store.run_lock import acquire_run_lock
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG

pytestmark = pytest.mark.slow


@flow(name="exploding-step")
def _exploding_step(token: str) -> None:
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
    monkeypatch.setitem(pipeline.STEP_FLOWS, "s02", _exploding_step)
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

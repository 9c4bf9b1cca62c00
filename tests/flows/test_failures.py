"""Bad input at run time: a missing cassette entry and an unreachable endpoint stop
the run with a clear message, and a later run redoes only what did not finish."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from flows.cli import main
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

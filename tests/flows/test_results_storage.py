"""Prefect results can live at an fsspec URL, so several machines can share them."""

from __future__ import annotations

import json

import pytest
import yaml

from flows.cli import main
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG

pytestmark = pytest.mark.slow


def test_results_at_an_fsspec_url_serve_as_the_cache(prefect_harness, tmp_path):
    """With run.results_storage = memory://..., a re-run is all cache hits."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    data["run"]["results_storage"] = f"memory://agentskiller-{tmp_path.name}"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    reports = []
    for name in ("first", "second"):
        report = tmp_path / f"{name}.json"
        args = ["run", "--config", str(config), "--output-dir", str(tmp_path / "out")]
        assert main([*args, "--until", "s01", "--report-json", str(report)]) == 0
        reports.append(json.loads(report.read_text()))
    assert reports[0]["llm_calls"] == 2
    assert reports[1]["llm_calls"] == 0
    assert reports[1]["steps"]["s01_domain_expansion"]["cached"] == 4
    assert not (tmp_path / "out" / ".agentskiller" / "prefect-results").exists()

"""Prefect results can live at an fsspec URL, so several machines can share them."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
from prefect.serializers import PickleSerializer

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


class _Planted:
    """Unpickling this creates the file it names: proof that a pickle ran."""

    def __init__(self, path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_planted_pickle_and_altered_json_results_are_recomputed_not_run(
    prefect_harness, tmp_path, caplog
):
    """Result files are JSON; a pickle or an edited outcome in the cache is ignored
    (never unpickled, never trusted) and the item is recomputed."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(data))
    out, report = tmp_path / "out", tmp_path / "report.json"
    args = ["run", "--config", str(config), "--output-dir", str(out), "--until", "s01"]
    assert main(args) == 0
    records = {}
    for path in (out / ".agentskiller" / "prefect-results").iterdir():
        record = json.loads(path.read_bytes())
        assert record["metadata"]["serializer"]["type"] == "agentskiller-outcome-json"
        records[json.loads(record["result"])["item_key"]] = (path, record)
    assert set(records) == {"seeds", "iteration-000", "iteration-001", "domain-topics"}
    sentinel = tmp_path / "pickle-ran"
    planted, _ = records["iteration-000"]
    metadata = ResultRecordMetadata(serializer=PickleSerializer(), storage_key="k")
    planted.write_bytes(
        ResultRecord(metadata=metadata, result=_Planted(sentinel)).serialize()
    )
    altered, record = records["iteration-001"]
    outcome = json.loads(record["result"])
    outcome["artifacts"][0]["artifact"]["payload"]["iteration"] = 99
    altered.write_text(json.dumps({**record, "result": json.dumps(outcome)}))
    with caplog.at_level(logging.WARNING, logger="tasks.results"):
        assert main([*args, "--report-json", str(report)]) == 0
    assert not sentinel.exists()
    again = json.loads(report.read_text())["steps"]["s01_domain_expansion"]
    assert (again["cached"], again["llm_calls"]) == (2, 2)
    assert f"{planted} was not written by this pipeline" in caplog.text
    assert "'iteration-001' does not validate" in caplog.text
    for key in ("iteration-000", "iteration-001"):
        path, original = records[key]
        assert json.loads(path.read_bytes())["result"] == original["result"]

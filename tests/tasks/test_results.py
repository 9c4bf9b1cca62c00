"""Prefect results are JSON outcomes that are validated on load, never unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect._internal.result_records import ResultRecord, ResultRecordMetadata
from prefect.serializers import PickleSerializer

from schemas.artifact import Artifact, FailedItem, ItemOutcome
from schemas.domain import Domain
from schemas.entity import Attribute, Entity
from tasks.results import (
    OutcomeSerializer,
    UntrustedResult,
    decode_outcome,
    encode_outcome,
    trusted_record,
)
from tests.store.test_artifacts import _domain, _entity


class _Planted:
    """Unpickling this creates the file it names: proof that a pickle ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def _outcome() -> ItemOutcome:
    domain = _domain("dental_clinic")
    entity = _entity("Patient", domain)
    attributes = {
        "zip_code": Attribute(description="postal code", type="string"),
        **entity.payload.attributes,
    }
    payload = entity.payload.model_copy(update={"attributes": attributes})
    entity = Artifact.build(
        kind="entity", id="Patient", payload=payload, producer=entity.producer
    )
    return ItemOutcome(item_key="batch-000", artifacts=(domain, entity), llm_calls=2)


def _record(serializer, result) -> bytes:
    metadata = ResultRecordMetadata(serializer=serializer, storage_key="k")
    return ResultRecord(metadata=metadata, result=result).serialize()


def test_outcome_round_trips_through_json_with_exact_payload_types() -> None:
    """Decoding gives an equal outcome whose payloads have their own classes."""
    outcome = _outcome()
    blob = encode_outcome(outcome)
    assert json.loads(blob)["artifacts"][1]["payload_type"] == "schemas.entity:Entity"
    decoded = decode_outcome(blob)
    assert decoded == outcome
    assert [type(a.payload) for a in decoded.artifacts] == [Domain, Entity]
    # dict order survives too, so exports made from a cached outcome are identical
    assert list(decoded.artifacts[1].payload.attributes) == ["zip_code", "id"]
    assert decoded.model_dump_json() == outcome.model_dump_json()
    failed = ItemOutcome(
        item_key="x",
        failure=FailedItem(step="s01", item_key="x", reason="error", message="boom"),
    )
    assert decode_outcome(encode_outcome(failed)) == failed


def test_outcome_with_an_altered_artifact_is_refused() -> None:
    """A payload edited after the fact no longer matches its content hash."""
    document = json.loads(encode_outcome(_outcome()))
    document["artifacts"][0]["artifact"]["payload"]["name"] = "evil_clinic"
    with pytest.raises(UntrustedResult, match="'batch-000' does not validate"):
        decode_outcome(json.dumps(document).encode())


@pytest.mark.parametrize(
    "payload_type",
    ["builtins:dict", "os:system", "schemas.base:sha256_hex", "schemas..x:Domain"],
)
def test_payload_types_outside_the_schema_models_are_refused(
    payload_type: str,
) -> None:
    """Only pydantic models of the schemas package are looked up by name."""
    document = json.loads(encode_outcome(_outcome()))
    document["artifacts"][0]["payload_type"] = payload_type
    with pytest.raises(UntrustedResult, match="is not a schemas model"):
        decode_outcome(json.dumps(document).encode())


def test_garbage_is_refused_as_an_outcome() -> None:
    """Bytes that are not the outcome document are refused, naming why."""
    with pytest.raises(UntrustedResult, match="not JSON"):
        decode_outcome(b"\x80\x04garbage")
    with pytest.raises(UntrustedResult, match="not an agentskiller-item-outcome/1"):
        decode_outcome(b'{"item_key": "x"}')


def test_serializer_writes_a_json_record_that_reads_back(tmp_path: Path) -> None:
    """A record made with OutcomeSerializer is JSON and passes the read guard."""
    outcome = _outcome()
    blob = _record(OutcomeSerializer(), outcome)
    record = json.loads(blob)
    assert record["metadata"]["serializer"]["type"] == "agentskiller-outcome-json"
    assert json.loads(record["result"])["item_key"] == "batch-000"
    assert trusted_record(str(tmp_path / "k"), blob) == blob
    assert ResultRecord.deserialize(blob).result == outcome


def test_pickle_record_is_refused_without_being_unpickled(tmp_path: Path) -> None:
    """The guard refuses a planted pickle record (its code never runs), old-format
    and oddly shaped records, and garbage."""
    sentinel = tmp_path / "pickle-ran"
    blob = _record(PickleSerializer(), _Planted(sentinel))
    with pytest.raises(UntrustedResult, match="is not a JSON outcome record"):
        trusted_record(str(tmp_path / "k"), blob)
    legacy = json.dumps(
        {**json.loads(_record(OutcomeSerializer(), _outcome())), "serializer": {}}
    ).encode()
    with pytest.raises(UntrustedResult):
        trusted_record(str(tmp_path / "k"), legacy)
    unparsed = json.dumps(
        {**json.loads(_record(OutcomeSerializer(), _outcome())), "result": [1]}
    ).encode()
    with pytest.raises(UntrustedResult):
        trusted_record(str(tmp_path / "k"), unparsed)
    with pytest.raises(UntrustedResult):
        trusted_record(str(tmp_path / "k"), b"\x80\x04garbage")
    assert not sentinel.exists()


def test_a_result_record_is_replaced_whole_never_written_in_place(
    tmp_path: Path,
) -> None:
    """A reader holding the old record keeps reading it whole while a new one is
    written (a process killed mid-write cannot leave a torn record), for the sync
    and the async write path Prefect uses."""
    import asyncio

    from tasks.fanout import ResultFolder

    folder = ResultFolder(basepath=str(tmp_path))
    first = encode_outcome(_outcome())
    folder.write_path("record", content=first, _sync=True)
    with (tmp_path / "record").open("rb") as reader:
        folder.write_path("record", content=b"x" * 10, _sync=True)
        asyncio.run(folder.awrite_path("record", content=b"y" * 10))
        assert reader.read() == first
    assert (tmp_path / "record").read_bytes() == b"y" * 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record"]

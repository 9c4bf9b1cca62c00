"""Prefect results as plain JSON that is validated on read, never executed.

Input: the `ItemOutcome` a step task returns (to store), or the bytes of a result
record (to load). Output: `OutcomeSerializer`, the Prefect result serializer of every
step task, and `TrustedResultReads`, a mixin for result storage blocks that refuses
any record not written by that serializer. No side effects besides warning logs.

Prefect's default serializer is pickle, and a record names its own serializer, so a
file planted in the results folder would run code on the next cache lookup. Here a
record must name `OutcomeSerializer`, whose `loads` is `json.loads` plus pydantic
validation: each artifact is validated as `Artifact[<payload class>]` (which
recomputes its content hash), the payload class being looked up by name only among
the pydantic models of the `schemas` package. A refused record reads as a cache
miss, so the item is recomputed and its record rewritten.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
from typing import Any

import orjson
from prefect.serializers import Serializer
from pydantic import BaseModel, Field, ValidationError

from schemas.artifact import Artifact, FailedItem, ItemOutcome

SERIALIZER_TYPE = "agentskiller-outcome-json"
FORMAT = "agentskiller-item-outcome/1"
_SCHEMA_PACKAGE = "schemas"

_LOG = logging.getLogger(__name__)


class UntrustedResult(ValueError):
    """A stored result is not a valid outcome written by `OutcomeSerializer`."""


class OutcomeSerializer(Serializer):
    """Serialises `ItemOutcome`s as JSON; loads only what validates as one."""

    type: str = Field(default=SERIALIZER_TYPE, frozen=True)

    def dumps(self, obj: ItemOutcome) -> bytes:
        return encode_outcome(obj)

    def loads(self, blob: bytes) -> ItemOutcome:
        try:
            return _decoded(blob)
        except UntrustedResult as exc:
            _LOG.warning("ignoring a cached result: %s; the item is recomputed", exc)
            raise


_DECODED_CACHE = 256


@functools.lru_cache(maxsize=_DECODED_CACHE)
def _decoded(blob: bytes) -> ItemOutcome:
    """`decode_outcome`, once per distinct record (its exact bytes) in this process.

    Prefect reads a cached item's record twice (whether it exists, then its value),
    and each decode re-validates every artifact and recomputes its content hash;
    the second read now costs a lookup. Outcomes are frozen, so sharing one is
    safe; a refused record is not cached and raises again each time.
    """
    return decode_outcome(blob)


def encode_outcome(outcome: ItemOutcome) -> bytes:
    """The JSON document of an outcome (each artifact with its payload class).

    Raises:
        TypeError: If `outcome` is not an `ItemOutcome`.
    """
    if not isinstance(outcome, ItemOutcome):
        raise TypeError(f"step tasks return ItemOutcome, not {type(outcome)}")
    document = {
        "format": FORMAT,
        "item_key": outcome.item_key,
        "llm_calls": outcome.llm_calls,
        "failure": outcome.failure.model_dump(mode="json") if outcome.failure else None,
        "artifacts": [
            {
                "payload_type": _type_name(type(artifact.payload)),
                "artifact": artifact.model_dump(mode="json", serialize_as_any=True),
            }
            for artifact in outcome.artifacts
        ],
    }
    # Not sorted: payload dicts keep their order, which exports written from a
    # cached outcome reproduce byte for byte. orjson writes the same values as
    # `json.dumps` about four times faster (every item's result goes through
    # here); floats may be spelled differently (1e-7, not 1e-07) but read back
    # equal. NaN and infinity become null, as in the store's object files (so
    # such an artifact could not be stored either); integers beyond 64 bits are
    # left to `json`.
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def decode_outcome(blob: bytes) -> ItemOutcome:
    """Rebuild a typed outcome from `encode_outcome`'s JSON, validating everything.

    Raises:
        UntrustedResult: If the JSON is not such a document, a payload class is not
            a model of the `schemas` package, or anything fails validation
            (including an artifact whose content hash does not match).
    """
    try:
        document = json.loads(blob)
    except ValueError as exc:
        raise UntrustedResult(f"not JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UntrustedResult(f"not an {FORMAT} document")
    try:
        failure = document["failure"]
        return ItemOutcome(
            item_key=document["item_key"],
            llm_calls=document["llm_calls"],
            failure=None if failure is None else FailedItem.model_validate(failure),
            artifacts=tuple(_artifact(entry) for entry in document["artifacts"]),
        )
    except (KeyError, TypeError, ValidationError) as exc:
        raise UntrustedResult(
            f"outcome {document.get('item_key')!r} does not validate "
            f"({type(exc).__name__}: {str(exc)[:300]})"
        ) from None


def trusted_record(path: str, data: bytes) -> bytes:
    """Pass through a result record written by `OutcomeSerializer`, refuse others.

    Raises:
        UntrustedResult: If `data` is not such a record (for example a record that
            names the pickle serializer); it is never deserialised.
    """
    try:
        record = json.loads(data)
        serializer = record["metadata"]["serializer"]["type"]
        # Prefect prefers the top-level "serializer" of old-format records, and
        # hands back a result that is not a string without deserialising it.
        shaped = set(record) == {"metadata", "result"} and isinstance(
            record["result"], str
        )
    except (ValueError, KeyError, TypeError):
        serializer, shaped = None, False
    if serializer != SERIALIZER_TYPE or not shaped:
        _LOG.warning(
            "result file %s was not written by this pipeline's JSON serializer "
            "(serializer %r); it is ignored, never loaded, and the item is recomputed",
            path,
            serializer,
        )
        raise UntrustedResult(f"result file {path} is not a JSON outcome record")
    return data


class TrustedResultReads:
    """Mixin for a Prefect filesystem block: reads only pass `trusted_record`."""

    async def aread_path(self, path: str) -> bytes:
        data = await super().aread_path(path)  # type: ignore[misc]
        return trusted_record(self._shown(path), data)

    def read_path(self, path: str, **kwargs: Any) -> bytes:
        data = super().read_path(path, _sync=True)  # type: ignore[misc]
        return trusted_record(self._shown(path), data)

    def _shown(self, path: str) -> str:
        base = str(getattr(self, "basepath", "") or "")
        return f"{base.rstrip('/')}/{path}" if base else path


def _artifact(entry: dict[str, Any]) -> Artifact[Any]:
    payload_type = _schema_model(entry["payload_type"])
    return Artifact[payload_type].model_validate(entry["artifact"])  # type: ignore[valid-type]


def _type_name(cls: type) -> str:
    name = f"{cls.__module__}:{cls.__qualname__}"
    try:
        found = _schema_model(name)
    except UntrustedResult:
        found = None
    if found is not cls:
        raise TypeError(f"payload class {name} is not a model of {_SCHEMA_PACKAGE}/")
    return name


@functools.lru_cache(maxsize=1024)
def _schema_model(name: str) -> type[BaseModel]:
    """The pydantic model `module:Class` of the schemas package, nothing else
    (looked up once per name: every stored artifact names its class)."""
    module, _, qualname = str(name).partition(":")
    parts = module.split(".")
    if (
        parts[0] != _SCHEMA_PACKAGE
        or not all(part.isidentifier() for part in parts)
        or not qualname.isidentifier()
    ):
        raise UntrustedResult(f"payload type {name!r} is not a schemas model")
    try:
        cls = getattr(importlib.import_module(module), qualname, None)
    except ImportError:
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
        raise UntrustedResult(f"payload type {name!r} is not a schemas model")
    return cls

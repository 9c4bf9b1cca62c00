"""Checks of what the store reads back, and the output location's identity file.

Input: the bytes of an object or manifest file and what the caller expects of it
(content hash; step, output id and which objects exist). Output: a short sentence
saying what is wrong ("" when nothing is) plus the parsed data. Side effect:
`create_once` writes a file (or object) only if it does not exist yet, atomically.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from schemas.artifact import StepManifest, content_hash_of
from tasks.store.atomic import write_bytes_atomic
from tasks.store.location import RemotePath, StorePath


def object_problem(raw: bytes, digest: str) -> tuple[str, dict[str, Any]]:
    """What is wrong with an object file that should hold artifact `digest`."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return f"not JSON ({exc})", {}
    if not isinstance(data, dict):
        return "not a JSON object", {}
    try:
        actual = content_hash_of(data)
    except KeyError as exc:
        return f"not an artifact (no {exc} field)", {}
    if actual != digest or data.get("content_hash") != digest:
        return f"its content hashes to {actual[:12]}…, not {digest[:12]}…", {}
    return "", data


def manifest_problem(
    raw: bytes, *, step: str, output_id: str, has: Callable[[str], bool]
) -> tuple[str, StepManifest | None]:
    """What is wrong with the manifest file of `step` in output location `output_id`.

    Args:
        raw: The file's bytes.
        step: The step it should describe.
        output_id: The id of the output location reading it.
        has: Whether an object with a content hash is in this store.
    """
    try:
        manifest = StepManifest.model_validate(json.loads(raw))
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        return f"not a step manifest ({where}: {error['msg']})", None
    except ValueError as exc:
        return f"not JSON ({exc})", None
    if manifest.step != step:
        return f"it is the manifest of step {manifest.step}", manifest
    if manifest.output_id is None:
        return "it names no output location (written before manifests did)", manifest
    if manifest.output_id != output_id:
        return (
            f"it was written for another output location (output id "
            f"{manifest.output_id}, while this one is {output_id})",
            manifest,
        )
    listed = {*manifest.outputs, *manifest.exports.values()}
    missing = sorted(
        f"{r.kind}:{r.id} ({r.content_hash[:12]})"
        for r in listed
        if not has(r.content_hash)
    )
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        return f"it lists {len(missing)} object(s) missing here: {shown}", manifest
    return "", manifest


def create_once(path: StorePath, data: bytes) -> None:
    """Create `path` holding `data` unless it exists; concurrent creators agree
    (locally by a hard link, at a URL by a create-only PUT)."""
    if isinstance(path, RemotePath):
        path.create(data)
        return
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    write_bytes_atomic(tmp, data)
    try:
        os.link(tmp, path)  # atomic, and fails when another creator was first
    except FileExistsError:
        pass
    finally:
        tmp.unlink()

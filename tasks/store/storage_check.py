"""Is an output location usable? Checked before any work starts.

Input: the output root (a local path or a `RemotePath`) and the process environment
(for the S3 endpoint shown in messages). Output: `storage_problem`, one sentence
naming what is wrong and where ("" when the location can be written). Side effects:
one probe file (in the nearest existing folder) or probe object (under
`.agentskiller/`) is written and deleted again; nothing else is created, so a
refused location is left as it was.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

from tasks.store.location import RemotePath, endpoint_of
from tasks.store.paths import INTERNAL_DIR, WRITE_PROBE_PREFIX


def storage_problem(root: Path | RemotePath, env: Mapping[str, str]) -> str:
    """Why a run could not write its outputs at `root`, or "" if it can.

    Args:
        root: The output location.
        env: The process environment (`AWS_ENDPOINT_URL` is named in messages).

    Returns:
        One sentence naming the location and the cause, or "".
    """
    if isinstance(root, RemotePath):
        return _remote_problem(root, env)
    return _local_problem(root)


def _local_problem(root: Path) -> str:
    folder = root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"output directory {root} cannot be created: {folder} is not a directory"
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=WRITE_PROBE_PREFIX)
    except OSError as exc:
        where = "" if folder == root else f" (its nearest existing folder {folder})"
        return (
            f"output directory {root} is not writable{where}: "
            f"{exc.strerror or exc}; choose another --output-dir or run.output_dir"
        )
    os.close(fd)
    os.unlink(probe)
    return ""


def _remote_problem(root: RemotePath, env: Mapping[str, str]) -> str:
    endpoint = endpoint_of(root, env) if root.protocol in ("s3", "s3a") else None
    at = f" at endpoint {endpoint}" if endpoint else ""
    probe = root / INTERNAL_DIR / f"{WRITE_PROBE_PREFIX}{uuid.uuid4().hex}"
    try:
        fs = root.fs
    except (ImportError, ValueError) as exc:
        return (
            f"output location {root}: no storage backend for {root.protocol}:// "
            f"({exc}); install the fsspec package for it"
        )
    try:
        fs.pipe_file(probe.key, b"")
        fs.rm_file(probe.key)
    except FileNotFoundError:
        return (
            f"output location {root}: bucket {root.bucket!r} does not exist{at}; "
            "create it first, or fix the bucket name"
        )
    except PermissionError as exc:
        return (
            f"output location {root} is not writable: access denied{at} while "
            f"writing and deleting {probe} ({exc}); check the credentials "
            "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and the bucket policy"
        )
    except Exception as exc:  # the one boundary: any backend failure is reported
        return (
            f"output location {root}: cannot reach the storage{at}: "
            f"{type(exc).__name__}: {exc}; check AWS_ENDPOINT_URL and the network"
        )
    return ""

"""The run lock at an object-store URL: a lock object that only one run can create.

Input: the lock's `RemotePath` and who is asking (run id, command). Output: a
`RemoteRunLock` to release at the end of the run, or `RunLocked` naming the holder.
Side effects: `.agentskiller/run.lock` is created with a create-only PUT
(`If-None-Match: *`), so of two runs starting at once exactly one gets it; it holds
the holder's pid, host, start time, run id and command as JSON, and releasing
deletes it. An object store cannot tell whether its writer is alive: a lock left
by a run killed on this host (its pid is gone) is taken over with a PUT that is
conditional on the stale object's ETag (`If-Match`), so two runs cannot both take
it over; a lock of another host is never taken over.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas.store import RunLockHolder
from tasks.store.location import RemotePath
from tasks.store.run_lock import RunLocked, pid_alive

_LOG = logging.getLogger(__name__)


class RemoteRunLock:
    """A held lock object; `release()` (or leaving the `with` block) deletes it."""

    def __init__(self, path: RemotePath, holder: RunLockHolder, data: bytes) -> None:
        self.path = path
        self.holder = holder
        self._data: bytes | None = data

    def release(self) -> None:
        """Delete the lock object if it is still this run's; again does nothing."""
        data, self._data = self._data, None
        if data is None:
            return
        try:
            current = self.path.read_bytes()
        except FileNotFoundError:
            return
        if current == data:
            self.path.unlink(missing_ok=True)
        else:
            _LOG.warning("run lock %s was taken over by another run", self.path)

    def __enter__(self) -> RemoteRunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire_remote(path: RemotePath, *, run_id: str, command: str) -> RemoteRunLock:
    """Take the output location at a URL for one run.

    Raises:
        RunLocked: If another run holds it, or left it on another host.
    """
    holder = RunLockHolder(
        pid=os.getpid(),
        host=socket.gethostname(),
        since=datetime.now(UTC),
        run_id=run_id,
        command=command,
    )
    data = holder.model_dump_json().encode("utf-8")
    if path.create(data):
        return RemoteRunLock(path, holder, data)
    previous, etag = _read(path)
    if previous is None or previous.host != socket.gethostname():
        raise RunLocked(
            path,
            previous,
            "Wait for it to finish, or give this run another --output-dir. If that "
            f"run is no longer running, delete {path} and run again.",
        )
    if pid_alive(previous.pid):
        raise RunLocked(
            path,
            previous,
            "Wait for it to finish, or give this run another --output-dir.",
        )
    if etag is None or not _replace_if_unchanged(path, data, etag):
        raise RunLocked(path, previous, "Another run took the stale lock first.")
    _LOG.warning(
        "taking over the stale run lock %s: %s, which is no longer running",
        path,
        previous.describe(),
    )
    return RemoteRunLock(path, holder, data)


def check_remote(path: RemotePath) -> None:
    """Refuse early when a run that may be alive holds the lock object.

    Raises:
        RunLocked: If the object names a live local process or another host.
    """
    holder, etag = _read(path)
    if holder is None and etag is None:
        return  # no lock object
    if holder is not None and holder.host == socket.gethostname():
        if not pid_alive(holder.pid):
            return  # stale: the run will take it over
    raise RunLocked(
        path,
        holder,
        "Wait for it to finish, or give this run another --output-dir.",
    )


def _read(path: RemotePath) -> tuple[RunLockHolder | None, str | None]:
    """The lock's holder record and the object's ETag (None when unreadable)."""
    try:
        etag = path.fs.info(path.key).get("ETag")
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    try:
        return RunLockHolder.model_validate_json(data), etag
    except ValidationError:
        _LOG.warning("run lock record %s is unreadable: %r", path, data[:200])
        return None, etag


def _replace_if_unchanged(path: RemotePath, data: bytes, etag: str) -> bool:
    """PUT `data` only if the object still has `etag` (S3 `If-Match`)."""
    if path.protocol not in ("s3", "s3a"):
        return False  # no conditional overwrite known for this backend
    try:
        path.fs.pipe_file(path.key, data, IfMatch=etag)
    except OSError:  # 412 Precondition Failed, or the object is gone
        return False
    return True

"""The exclusive run lock on an output location: one run at a time writes there.

Input: the output layout and who is asking (run id, command). Output: a `RunLock`
to release at the end of the run, or `RunLocked` naming the holder. Side effects:
`.agentskiller/run.lock` is created if missing, locked with `flock` for as long as
the run lasts, and holds the holder's pid, host, start time, run id and command as
JSON; releasing empties it and drops the lock. The kernel drops a `flock` when its
process dies, so a lock file that still names a holder but is not locked was left
by a killed run; it is taken over (and logged) when that holder was on this host.
A holder on another host cannot be checked, so its record is never taken over.
At an fsspec URL the lock is an object created only if absent (see
`tasks.store.run_lock_remote`).
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from schemas.store import RunLockHolder
from tasks.store.artifacts import StoreError
from tasks.store.location import RemotePath
from tasks.store.paths import OutputLayout

if TYPE_CHECKING:
    from tasks.store.run_lock_remote import RemoteRunLock

_LOG = logging.getLogger(__name__)


class RunLocked(StoreError):
    """Another run holds the output location.

    Attributes:
        path: The lock file.
        holder: Its record, or None when it could not be read.
    """

    def __init__(self, path: Path, holder: RunLockHolder | None, why: str) -> None:
        who = holder.describe() if holder else "a run whose record is unreadable"
        super().__init__(
            f"output location {path.parent.parent} is in use by another run: {who}. "
            f"{why}"
        )
        self.path = path
        self.holder = holder


class RunLock:
    """A held run lock; `release()` (or leaving the `with` block) gives it up."""

    def __init__(self, path: Path, fd: int, holder: RunLockHolder) -> None:
        self.path = path
        self.holder = holder
        self._fd: int | None = fd

    def release(self) -> None:
        """Empty the lock file and unlock it; calling it again does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def acquire_run_lock(
    layout: OutputLayout, *, run_id: str, command: str
) -> RunLock | RemoteRunLock:
    """Take the output location for one run.

    Args:
        layout: The output location.
        run_id: The run taking it (shown to anyone refused).
        command: The command line of the run (shown to anyone refused).

    Returns:
        The held lock.

    Raises:
        RunLocked: If a live run holds it, or a run on another host left it.
    """
    path = layout.run_lock
    if isinstance(path, RemotePath):
        from tasks.store.run_lock_remote import acquire_remote

        return acquire_remote(path, run_id=run_id, command=command)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock_or_refuse(fd, path)
        _check_previous(_read_holder(fd), path)
        holder = RunLockHolder(
            pid=os.getpid(),
            host=socket.gethostname(),
            since=datetime.now(UTC),
            run_id=run_id,
            command=command,
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.model_dump_json().encode("utf-8"), 0)
    except BaseException:
        os.close(fd)
        raise
    return RunLock(path, fd, holder)


def check_run_lock(layout: OutputLayout) -> None:
    """Refuse early when a live run holds the output location right now.

    A quick check before a run starts its machinery; `acquire_run_lock` remains
    the authority (the location may be taken between the two). Creates nothing.

    Raises:
        RunLocked: If a live process holds the lock.
    """
    if isinstance(layout.run_lock, RemotePath):
        from tasks.store.run_lock_remote import check_remote

        check_remote(layout.run_lock)
        return
    try:
        fd = os.open(layout.run_lock, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        _lock_or_refuse(fd, layout.run_lock)
    finally:
        os.close(fd)  # drops this probe's lock, never the holder's


def _lock_or_refuse(fd: int, path: Path) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunLocked(
            path,
            _read_holder(fd),
            "Wait for it to finish, or give this run another --output-dir.",
        ) from None


def _check_previous(previous: RunLockHolder | None, path: Path) -> None:
    """Refuse or log the record of a run that ended without releasing the lock."""
    if previous is None:
        return
    if previous.host != socket.gethostname():
        raise RunLocked(
            path,
            previous,
            "That host's processes cannot be checked from here; if that run is no "
            f"longer running, delete {path} and run again.",
        )
    state = (
        "is running but does not hold the lock (pid reused)"
        if pid_alive(previous.pid)
        else "is no longer running"
    )
    _LOG.warning(
        "taking over the stale run lock %s: %s, which %s",
        path,
        previous.describe(),
        state,
    )


def _read_holder(fd: int) -> RunLockHolder | None:
    data = os.pread(fd, 65536, 0)
    if not data.strip():
        return None
    try:
        return RunLockHolder.model_validate_json(data)
    except ValidationError:
        _LOG.warning("run lock record is unreadable: %r", data[:200])
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Where sandbox runs keep their files: private, owner-checked directories, swept
when their orchestrator died, and measured for the total disk bound.

Inputs: the effective uid and the process table (`/proc`). Outputs: the base
directory of this user's sandbox state (`state_dir`), its `locks` and `runs`
sub-directories, a fresh run directory named after the owning process, the disk
usage of a tree. Side effects: creates those directories (never trusting one that
already exists unless it is a real directory owned by this user with the expected
mode, under a parent that other users cannot write), and `sweep_dead_runs` deletes
run directories whose owning process is gone and returns the pool uids they
recorded.

Location: as root `/var/lib/agentskiller-sandbox` (only root can create entries in
`/var/lib`); otherwise `agentskiller-sandbox` in the user's home directory (owned by
the user). Neither is a predictable path in a world-writable directory, so another
local user cannot plant it first; `private_dir` still refuses a directory with a
wrong owner or mode.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from tasks.runtime.sandbox_files import SandboxSetupError, remove_tree

ROOT_STATE_DIR = Path("/var/lib/agentskiller-sandbox")
USER_STATE_DIR_NAME = ".agentskiller-sandbox"
LOCKS = "locks"
RUNS = "runs"
UID_FILE = "uid"
# Every file or directory counts at least one block, so a flood of empty files
# (inodes) is bounded too.
MIN_ENTRY_BYTES = 4096
_GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH


def state_dir() -> Path:
    """This user's sandbox state directory (mode 0711: others may only traverse).

    Returns:
        The checked directory, created if missing.

    Raises:
        SandboxSetupError: If it exists with a wrong owner, type or mode, or its
            parent is writable by other users.
    """
    if os.geteuid() == 0:
        base = ROOT_STATE_DIR
    else:
        base = Path(pwd.getpwuid(os.geteuid()).pw_dir) / USER_STATE_DIR_NAME
    return private_dir(base, 0o711)


def locks_dir() -> Path:
    """The directory of the pool-uid lock files (mode 0700)."""
    return private_dir(state_dir() / LOCKS, 0o700)


def runs_dir() -> Path:
    """The directory holding one sub-directory per live run (mode 0711)."""
    return private_dir(state_dir() / RUNS, 0o711)


def private_dir(path: Path, mode: int) -> Path:
    """Create `path` with `mode`, or check that the existing one is trustworthy.

    Args:
        path: The directory.
        mode: Its required permission bits (no group or other write).

    Returns:
        `path`.

    Raises:
        SandboxSetupError: If the parent is writable by other users without the
            sticky bit (they could rename it away), or the existing entry is a
            symlink, not a directory, owned by another uid, or has permission
            bits beyond `mode` (a mode that is only stricter is set right).
    """
    parent = os.lstat(path.parent)
    if parent.st_mode & _GROUP_OTHER_WRITE and not parent.st_mode & stat.S_ISVTX:
        raise SandboxSetupError(
            f"{path.parent} is writable by other users without the sticky bit, so "
            f"{path} could be replaced; refusing it"
        )
    if not os.path.lexists(path):
        _create_with_mode(path, mode)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise SandboxSetupError(f"{path} exists but is not a directory; refusing it")
    if info.st_uid != os.geteuid():
        raise SandboxSetupError(
            f"{path} is owned by uid {info.st_uid}, not by this user "
            f"(uid {os.geteuid()}); refusing a directory someone else created"
        )
    found = stat.S_IMODE(info.st_mode)
    if found != mode and found & ~mode == 0:
        # Ours, and only stricter than it should be (an older release's cleanup
        # could leave `runs` at 0700): nobody else could have put anything in it,
        # so its mode is set right instead of refusing every sandbox start.
        os.chmod(path, mode)
        found = stat.S_IMODE(os.lstat(path).st_mode)
    if found != mode:
        raise SandboxSetupError(
            f"{path} has mode {found:04o}, expected {mode:04o}; refusing it"
        )
    return path


def _create_with_mode(path: Path, mode: int) -> None:
    """Create `path` so that it never exists with any mode but `mode`.

    `mkdir` applies the umask, and a `chmod` after it would leave a moment in
    which a concurrent creator (another thread or worker) sees the directory with
    the wrong mode and refuses it. So the directory is made under a private
    temporary name, given its mode, and renamed into place; if another creator
    won the race, their directory is kept and ours removed.
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        os.chmod(staging, mode)
        if not os.path.lexists(path):
            # A directory renamed onto an existing *empty* directory replaces it
            # (same owner and mode, so nothing observable changes); onto a
            # non-empty one it fails, and the winner's directory stays.
            with contextlib.suppress(OSError):
                os.rename(staging, path)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(staging)


def new_run_dir() -> Path:
    """A fresh, private run directory named `<pid>.<start time>-<random>`.

    The name lets a later start tell whether the owning process still lives.
    """
    prefix = f"{os.getpid()}.{process_start_time(os.getpid())}-"
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=runs_dir()))
    root.chmod(0o700)
    return root


def sweep_dead_runs() -> list[int]:
    """Delete run directories whose owning process is gone.

    Returns:
        The pool uids those runs had recorded (`record_uid`): processes of
        theirs that outlived the run may still exist.
    """
    uids = []
    for entry in os.scandir(runs_dir()):
        owner, _, _ = entry.name.partition("-")
        pid_text, _, started = owner.partition(".")
        if not pid_text.isdigit() or _owner_alive(int(pid_text), started):
            continue
        with contextlib.suppress(OSError, ValueError):
            uids.append(int(Path(entry.path, UID_FILE).read_text()))
        with contextlib.suppress(OSError):
            remove_tree(Path(entry.path))
    return uids


def record_uid(run_root: Path, uid: int) -> None:
    """Note the pool uid of a run, for the sweep after an orchestrator crash."""
    path = run_root / UID_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(str(uid))


def process_start_time(pid: int) -> str:
    """The start time of a process in clock ticks since boot ("" if gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may contain spaces; fields after it are plain.
    return text.rsplit(")", 1)[1].split()[19]


def _owner_alive(pid: int, started: str) -> bool:
    if pid == os.getpid():
        return True
    return process_start_time(pid) == started != ""


def disk_usage(path: Path, stop_above: int | None = None) -> int:
    """Bytes a tree occupies on disk, each entry counted as at least one block.

    Args:
        path: The tree's root.
        stop_above: Stop walking once the total exceeds this (the caller only
            needs to know that it does).

    Returns:
        The total (0 when the tree is gone).
    """
    total = 0
    pending = [str(path)]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError), os.scandir(current) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    info = entry.stat(follow_symlinks=False)
                    total += max(info.st_blocks * 512, MIN_ENTRY_BYTES)
                    if stat.S_ISDIR(info.st_mode):
                        pending.append(entry.path)
                if stop_above is not None and total > stop_above:
                    return total
    return total


def disk_watch(path: Path, limit_mb: int) -> Callable[[], bool]:
    """A check returning True once the tree at `path` exceeds `limit_mb`."""
    limit = limit_mb * 1024 * 1024
    return lambda: disk_usage(path, stop_above=limit) > limit

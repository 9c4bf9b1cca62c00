"""OS-level walls of the sandbox: host probing, the unprivileged identity, resource
limits and clean-up of a run's processes.

Inputs: the host (effective uid, `/usr/bin/unshare`, `/usr/bin/setpriv`, `/proc`)
and the sizes of one run. Outputs: `HostSupport` (which protections this host can
give, probed once per process on first use), a per-run `Identity` from a pool of
dedicated uids, argv prefixes that drop privileges or make a child die with its
parent (the rlimits are applied by `spawn_limits`), and helpers that kill every
process of a uid. Side effects, all only
when running as root with privilege dropping available: flock files in the private
lock directory the caller names (`sandbox_dirs.locks_dir`) reserve a pool uid;
`chmod` adds other-execute (traverse) to the ancestors of the interpreter; the
probe starts a few short-lived processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tasks.runtime.sandbox_files import SandboxSetupError, grant_traverse

SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin")
# Dedicated uids (no passwd entry, below 65536 so user-namespaced containers map
# them): one per concurrent run, so RLIMIT_NPROC counts only that run's processes
# and every process of the uid can be killed afterwards without hitting others.
# The pool belongs to one lock directory: versions that lock elsewhere (before the
# locks moved out of /tmp: 59000-59063) must never share a uid with this one, or
# each would kill the other's processes when reserving it.
UID_POOL = range(59_100, 59_164)
PROBE_UID = 65_534
_PROBE_TIMEOUT_S = 30.0
_KILL_ROUNDS = 200
_KILL_PAUSE_S = 0.01
_MIB = 1024 * 1024


@dataclass(frozen=True)
class HostSupport:
    """Which protections this host provides.

    Attributes:
        is_root: The orchestrator runs with euid 0.
        netns_prefix: argv prefix that runs a command without network (empty
            when no network namespace can be created).
        setpriv: Path of `setpriv` when privileges can be dropped, else None.
        notes: One sentence per protection the host cannot give.
    """

    is_root: bool
    netns_prefix: tuple[str, ...]
    setpriv: str | None
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    """The unprivileged uid and gid one run executes as."""

    uid: int
    gid: int


@functools.cache
def host_support() -> HostSupport:
    """Probe the host once per process (the first call starts a few processes).

    Returns:
        The protections available here.
    """
    is_root = os.geteuid() == 0
    notes: list[str] = []
    search = os.pathsep.join(SYSTEM_PATH)
    unshare = shutil.which("unshare", path=search)
    true = shutil.which("true", path=search) or "true"
    netns: tuple[str, ...] = ()
    if unshare is not None:
        for flags in (("-n",),) if is_root else (("-r", "-n"),):
            if _succeeds([unshare, *flags, "--", true]):
                netns = (unshare, *flags, "--")
                break
    if not netns:
        notes.append(
            "no network namespace: the audit hook alone refuses sockets, "
            "and native code can still reach the network"
        )
    setpriv = _probe_setpriv(is_root, search, notes)
    return HostSupport(is_root, netns, setpriv, tuple(notes))


def _probe_setpriv(is_root: bool, search: str, notes: list[str]) -> str | None:
    if not is_root:
        notes.append(
            "not root: the program runs as the orchestrator's user, so file "
            "permissions do not protect the user's files and the process limit "
            "counts the user's other processes"
        )
        return None
    setpriv = shutil.which("setpriv", path=search)
    if setpriv is None:
        notes.append("setpriv is missing: the program runs as root")
        return None
    for path in _interpreter_paths():
        try:
            grant_traverse(path)
        except OSError:
            break  # the version check below then decides
    code = "import json,sys;print(json.dumps([sys.version,sys.prefix,sys.base_prefix]))"
    expected = [sys.version, sys.prefix, sys.base_prefix]
    probe = [*drop_prefix(setpriv, Identity(PROBE_UID, PROBE_UID)), sys.executable]
    try:
        done = subprocess.run(
            [*probe, "-c", code],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            env={"PATH": search},
            cwd="/",
        )
        seen = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError):
        seen = None
    if seen != expected:
        notes.append(
            "the interpreter does not start unchanged as an unprivileged user: "
            "the program runs as root"
        )
        return None
    return setpriv


def _succeeds(argv: list[str]) -> bool:
    try:
        done = subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _interpreter_paths() -> list[str]:
    return [
        os.path.dirname(os.path.abspath(sys.executable)),
        os.path.dirname(os.path.realpath(sys.executable)),
        sys.prefix,
        sys.base_prefix,
    ]


def drop_prefix(setpriv: str, identity: Identity) -> list[str]:
    """argv prefix that runs a command as `identity` with no supplementary groups,
    killed when its parent dies (set after the uid change, which clears it).

    Args:
        setpriv: Path of the `setpriv` program.
        identity: The uid and gid to switch to.

    Returns:
        The prefix, ending in "--".
    """
    return [
        setpriv,
        f"--reuid={identity.uid}",
        f"--regid={identity.gid}",
        "--clear-groups",
        "--no-new-privs",
        "--pdeathsig=KILL",
        "--",
    ]


@contextlib.contextmanager
def reserve_identity(
    host: HostSupport, lock_dir: Callable[[], Path]
) -> Iterator[Identity | None]:
    """Reserve a pool uid for one run (None when privileges cannot be dropped).

    Args:
        host: The probed host support.
        lock_dir: Returns the checked, private directory of the lock files
            (called only when a uid is needed).

    Yields:
        The reserved identity, held until the context exits.

    Raises:
        SandboxSetupError: Every pool uid is in use.
    """
    if host.setpriv is None:
        yield None
        return
    locks = lock_dir()
    for uid in UID_POOL:
        if _has_account(uid):
            continue
        handle = open(locks / f"{uid}.lock", "a")  # held until the run ends
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            kill_uid(uid)  # leftovers of a crashed orchestrator that held the lock
            yield Identity(uid, uid)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise SandboxSetupError("every sandbox uid is in use")


def kill_unreserved(uid: int, lock_dir: Callable[[], Path]) -> None:
    """Kill the processes of a pool uid that no run holds (leftovers of a run
    whose orchestrator died); leave it alone while a run holds its lock.

    Args:
        uid: A pool uid recorded by a dead run.
        lock_dir: Returns the private directory of the lock files.
    """
    if uid not in UID_POOL:
        return
    with open(lock_dir() / f"{uid}.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        try:
            kill_uid(uid)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _has_account(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return True
    return False


def parent_death_prefix() -> list[str]:
    """argv prefix that makes a command die with the thread that started it, for
    runs that keep the orchestrator's uid (`drop_prefix` does this after a uid
    change). Empty when `setpriv` is missing; the sweep of the next start then
    removes what a crash leaves."""
    setpriv = shutil.which("setpriv", path=os.pathsep.join(SYSTEM_PATH))
    return [setpriv, "--pdeathsig=KILL", "--"] if setpriv else []


def task_count(uid: int) -> int:
    """Tasks (threads, zombies included) whose real uid is `uid`, as NPROC counts."""
    return sum(threads for _, real, _, _, threads in _processes() if real == uid)


def kill_uid(uid: int) -> None:
    """SIGKILL every live process running as `uid` until none is left.

    Args:
        uid: A uid reserved for this run (never a shared account).
    """
    for _ in range(_KILL_ROUNDS):
        pids = [
            pid
            for pid, real, effective, zombie, _ in _processes()
            if uid in (real, effective) and not zombie
        ]
        if not pids:
            return
        for pid in pids:
            _kill_if_owned(pid, uid)
        time.sleep(_KILL_PAUSE_S)


def _kill_if_owned(pid: int, uid: int) -> None:
    # A pidfd pins the process, so a recycled pid cannot be hit by mistake.
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if os.stat(f"/proc/{pid}").st_uid == uid:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)


def _processes() -> Iterator[tuple[int, int, int, bool, int]]:
    """(pid, real uid, effective uid, is zombie, threads) for every process."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "status").read_text(errors="replace")
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        try:
            uids = fields["Uid"].split()
            state = fields["State"].strip()
            threads = int(fields.get("Threads", "1").strip() or 1)
        except (KeyError, ValueError):
            continue
        yield int(entry.name), int(uids[0]), int(uids[1]), state[:1] in "ZX", threads

"""The warm-start template: a process that has imported one trusted program's
modules and forks a fresh, sandboxed copy of itself for each run of it.

Runs as `python -P -m tasks.runtime.sandbox_template MODULE CONTROL_FD STATUS_FD`,
started by `sandbox_warm` (never by hand). Input: MODULE, a project module run
as `python -m MODULE ...` in the sandbox (the environment worker), which the
template imports once, as its own user, before it serves; then one spawn request
per message on the control socket (JSON of the run's walls, with the run's
stdin, stdout and stderr attached as file descriptors). Output: per request,
a reply message with the request's id and the child's serial and pid (or why it
could not fork), or, for a kill request, whether the child's process group was
signalled; on the status pipe, one line `SERIAL STATUS` per child that ended (STATUS as
`subprocess` reports it: negative for a signal).

The child, before any of the run's own code or files are touched, puts up the
same walls as a cold start's exec chain (`prlimit`, `unshare -n`, `setpriv`, the
guard as `sitecustomize`): its own session, only the run's three streams open,
a new network namespace, the run's rlimits, the run's pool uid and gid with no
supplementary groups, no new privileges, death with the template, the scratch
directory as working directory, the run's scrubbed environment and import path,
and the audit-hook guard. Then it runs MODULE as `__main__` with the run's
arguments. It shares no process, uid, namespace or file with another run; what
it inherits from the template is memory holding only the imported modules.

The template itself never reads a run's files and never runs a run's code. It
stays single-threaded (it refuses to serve if its imports started a thread), so
forking it is safe.
"""

from __future__ import annotations

import ctypes
import importlib
import io
import json
import os
import resource
import runpy
import select
import signal
import socket
import sys
import tempfile
import threading
import traceback
from typing import Any

from tasks.runtime import sandbox_guard

MAX_MESSAGE_BYTES = 1 << 20
WARM_FAILURE_EXIT = 122
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38


def main(argv: list[str]) -> int:
    """Import the program, then fork a child per spawn request until the
    orchestrator closes the control socket."""
    module, control_fd, status_fd = argv[0], int(argv[1]), int(argv[2])
    control = socket.socket(fileno=control_fd)
    status = os.fdopen(status_fd, "w", encoding="ascii", buffering=1)
    try:
        importlib.import_module(module)
        if threading.active_count() != 1:
            raise RuntimeError(f"importing {module} started a thread")
    except BaseException as exc:  # reported, and the orchestrator starts cold
        control.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
        return 1
    control.send(json.dumps({"ready": os.getpid()}).encode())
    base_path = [p for p in sys.path if p not in _pythonpath()]
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int] = {}  # pid -> serial
    serial = 0
    while True:
        _reap(children, status)
        readable, _, _ = select.select([control, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
        if control not in readable:
            continue
        message, fds, _, _ = socket.recv_fds(control, MAX_MESSAGE_BYTES, 3)
        if not message:
            return 0
        spec = json.loads(message)
        asked = spec.get("request")
        if "kill" in spec:
            killed = _kill(children, spec["kill"])
            control.send(json.dumps({"request": asked, "killed": killed}).encode())
            continue
        serial += 1
        try:
            if len(fds) != 3:
                raise OSError(f"expected 3 streams, got {len(fds)}")
            pid = os.fork()
        except OSError as exc:
            _close(fds)
            error = f"{type(exc).__name__}: {exc}"
            control.send(json.dumps({"request": asked, "error": error}).encode())
            continue
        if pid == 0:
            _child(spec["spawn"], fds, base_path)  # never returns
        _close(fds)
        children[pid] = serial
        reply = {"request": asked, "serial": serial, "pid": pid}
        control.send(json.dumps(reply).encode())


def _reap(children: dict[int, int], status: io.TextIOBase) -> None:
    while children:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        serial = children.pop(pid, None)
        if serial is not None:
            status.write(f"{serial} {os.waitstatus_to_exitcode(wait_status)}\n")


def _kill(children: dict[int, int], serial: int) -> bool:
    """SIGKILL a child's process group. Only the template may signal by pid: it
    has not reaped the child yet, so the pid cannot belong to another process."""
    for pid, known in children.items():
        if known == serial:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                return False
            return True
    return False


def _close(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


def _pythonpath() -> set[str]:
    return {p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p}


def _child(spec: dict[str, Any], fds: list[int], base_path: list[str]) -> None:
    """Become the sandboxed run (in the forked child); exits, never returns."""
    try:
        template = os.getppid()
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        _wall_in(spec, template)
        os.chdir(spec["cwd"])
        os.environ.clear()
        os.environ.update(spec["env"])
        sys.path[:] = [*spec["path"], *base_path]
        sys.dont_write_bytecode = True
        tempfile.tempdir = None
        sys.stdin = open(0, encoding="utf-8", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)
        sandbox_guard.install(sandbox_guard.GuardPolicy.from_json(spec["policy"]))
    except BaseException as exc:
        os.write(2, f"{sandbox_guard.MARKER} the warm start failed: {exc!r}\n".encode())
        os._exit(WARM_FAILURE_EXIT)
    os._exit(_run(spec["module"], spec["args"]))


def _wall_in(spec: dict[str, Any], template: int) -> None:
    """Network namespace, limits and identity, in the order the exec chain
    applies them (the namespace needs the template's privileges)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if spec["netns"] and libc.unshare(_CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
    for which, soft, hard in spec["limits"]:
        resource.setrlimit(which, (soft, hard))
    if spec["uid"] is not None:
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    for option, value in (
        (_PR_SET_NO_NEW_PRIVS, 1),
        (_PR_SET_PDEATHSIG, signal.SIGKILL),
    ):
        if libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl({option}) failed")
    if os.getppid() != template:  # the template died before the signal was set
        os._exit(WARM_FAILURE_EXIT)


def _run(module: str, args: list[str]) -> int:
    """Run `module` as `python -m module args...` would; its exit status."""
    sys.argv = [module, *args]
    # As under `-m`, the program exists only as `__main__` (the template's
    # import of it would make runpy warn).
    sys.modules.pop(module, None)
    code: Any = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

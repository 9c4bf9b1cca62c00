"""Warm starts (`tasks.runtime.sandbox_warm`): a run forked from a template that
has imported its program gets exactly the walls of a cold start, falls back to a
cold start when the template cannot serve, and dies with its template."""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path
from typing import Any

import pytest

from schemas.sandbox import SandboxRequest
from tasks.runtime.sandbox_host import UID_POOL, host_support
from tasks.runtime.sandbox_process import SandboxProcess
from tasks.runtime.sandbox_warm import SWITCH
from tests.runtime.processes import await_gone

# Imported by the probe; a warm run imported it in the template, before the fork.
PROBE_DEPENDENCY = "import os\nIMPORTED_BY = os.getpid()\n"
PROBE = textwrap.dedent(
    """
    import json, os, resource, socket, sys
    import probe_dependency

    def walls():
        status = dict(
            line.split(":", 1) for line in open("/proc/self/status").read().splitlines()
        )
        try:
            open("/var/tmp/agentskiller-warm-probe", "w").close()
            write = "written"
        except PermissionError as exc:
            write = str(exc).split(" (")[0]
        try:
            socket.create_connection(("10.255.255.1", 9), timeout=1).close()
            network = "connected"
        except OSError as exc:
            network = str(exc).split(" (")[0]
        limits = {
            name: resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))
            for name in ("AS", "FSIZE", "NPROC", "CORE", "CPU")
        }
        return {
            "uid": status["Uid"].split(), "gid": status["Gid"].split(),
            "groups": status["Groups"].split(),
            "no_new_privs": status["NoNewPrivs"].strip(),
            "capabilities": [
                status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd")
            ],
            "own_session": os.getsid(0) == os.getpid(),
            "net_namespace": os.readlink("/proc/self/ns/net"),
            "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path,
            "fds": sorted(os.listdir("/proc/self/fd")), "limits": limits,
            "write_outside": write, "network": network, "name": __name__,
            "argv": sys.argv[1:], "hash": hash("agentskiller"),
            "umask": os.umask(0o077),
            "warm": probe_dependency.IMPORTED_BY != os.getpid(),
            "parent": os.getppid(),
        }

    if __name__ == "__main__":  # a warm program's template imports it
        sys.stdin.readline()
        print(json.dumps(walls()), flush=True)
        sys.stdin.readline()
    """
)


@pytest.fixture()
def probe_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "walls_probe.py").write_text(PROBE)
    (folder / "probe_dependency.py").write_text(PROBE_DEPENDENCY)
    folder.chmod(0o755)
    for path in folder.iterdir():
        path.chmod(0o644)
    tmp_path.chmod(0o755)
    return folder


def _request(folder: Path, warm: bool, **changes: Any) -> SandboxRequest:
    return SandboxRequest(
        argv=("python", "-m", "walls_probe", "first", "second"),
        python_path=(str(folder),),
        memory_mb=1024,
        max_processes=16,
        warm=warm,
        **changes,
    )


def _walls(request: SandboxRequest) -> tuple[dict[str, Any], SandboxProcess]:
    process = SandboxProcess(request)
    assert process.send(b"go", 30)
    reply = process.receive(60, 1 << 20)
    assert reply.line is not None, (reply.failure, process.stderr_tail())
    return json.loads(reply.line), process


def _run_specific(walls: dict[str, Any], scratch: Path) -> dict[str, Any]:
    """The walls with what differs between any two runs taken out."""
    text = json.dumps(walls).replace(str(scratch.parent), "<run>")
    found = json.loads(text)
    for key in ("net_namespace", "parent", "warm"):
        found.pop(key)
    # The process limit is the request's count plus the tasks the run's uid
    # already had when it was prepared (a previous run's last process can still
    # be exiting), so it differs between any two runs.
    nproc = found["limits"].pop("NPROC")
    assert nproc[0] == nproc[1] >= 16, nproc
    uid = {int(value) for value in found.pop("uid")}
    gid = {int(value) for value in found.pop("gid")}
    found["identity"] = (
        "pool" if uid <= set(UID_POOL) and gid == uid and len(uid) == 1 else sorted(uid)
    )
    return found


def test_a_warm_run_has_exactly_the_walls_of_a_cold_run(probe_dir: Path):
    """Identity, groups, capabilities, no-new-privs, session, limits, working
    directory, environment, import path, open files, guard, network, module
    name, arguments and hash seed all match; only the warm run's imports were
    made before its process existed, and it has a network namespace of its own
    (not the host's, not another run's)."""
    cold, cold_process = _walls(_request(probe_dir, warm=False))
    warm, warm_process = _walls(_request(probe_dir, warm=True))
    other, other_process = _walls(_request(probe_dir, warm=True))
    try:
        assert not cold["warm"] and warm["warm"] and other["warm"]
        assert not any("started cold" in note for note in warm_process.notes)
        assert _run_specific(warm, warm_process.scratch) == _run_specific(
            cold, cold_process.scratch
        )
        assert warm["write_outside"].startswith("sandbox:")
        assert warm["name"] == "__main__" and warm["argv"] == ["first", "second"]
        host = host_support()
        if host.is_root and host.setpriv:
            assert _run_specific(warm, warm_process.scratch)["identity"] == "pool"
            assert warm["uid"] != other["uid"]  # concurrent runs never share a uid
        if host.netns_prefix:
            namespaces = {os.readlink("/proc/self/ns/net"), warm["net_namespace"]}
            assert len(namespaces | {other["net_namespace"]}) == 3
    finally:
        for process in (cold_process, warm_process, other_process):
            process.stop()


def test_runs_start_cold_when_warm_starts_are_off_or_the_template_cannot_serve(
    probe_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    """`AGENTSKILLER_WARM_START=0` starts cold; so does a program whose import
    starts a thread (forking it would not be safe), with a note saying why."""
    monkeypatch.setenv(SWITCH, "0")
    walls, process = _walls(_request(probe_dir, warm=True))
    process.stop()
    assert not walls["warm"]
    monkeypatch.delenv(SWITCH)
    (probe_dir / "probe_dependency.py").write_text(
        PROBE_DEPENDENCY + "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(0.5,), daemon=True).start()\n"
    )
    walls, process = _walls(_request(probe_dir, warm=True))
    process.stop()
    assert not walls["warm"]
    assert any(
        "started cold" in note and "started a thread" in note for note in process.notes
    ), process.notes


def test_a_warm_run_ends_with_its_status_and_dies_with_its_template(probe_dir: Path):
    """A warm run's exit status is reported as a cold one's; killing the
    template kills its runs, and the next warm start gets a new template."""
    walls, process = _walls(_request(probe_dir, warm=True))
    assert walls["warm"]
    assert process.send(b"done", 30)
    assert process.process.wait(timeout=30) == 0
    process.stop()
    walls, process = _walls(_request(probe_dir, warm=True))
    try:
        os.kill(walls["parent"], signal.SIGKILL)
        await_gone(process.process.pid)
        assert process.process.wait(timeout=30) == -signal.SIGKILL
        assert not process.alive
    finally:
        process.stop()
    walls, process = _walls(_request(probe_dir, warm=True))
    process.stop()
    assert walls["warm"]


def test_warm_needs_a_module_program():
    with pytest.raises(ValueError, match="warm=True needs argv"):
        SandboxRequest(argv=("python", "script.py"), warm=True)

"""Tests of the sandbox for generated code: limits end runs with a typed status,
the guard and the OS refuse writes, network and processes, and the parent stays
clean. Every test starts real child processes (about 50 ms each; the CPU and
timeout tests take about one second)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import textwrap
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.sandbox import SandboxRequest, SandboxResult
from tasks.runtime.sandbox import run_sandboxed
from tasks.runtime.sandbox_guard import GuardPolicy, refusal
from tests.conftest import REPO

_WATCHED_LIMITS = (resource.RLIMIT_AS, resource.RLIMIT_CPU, resource.RLIMIT_NPROC)
_PARENT_LIMITS = {which: resource.getrlimit(which) for which in _WATCHED_LIMITS}
_BASE_ENV = {
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "PYTHONHASHSEED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPATH",
    "PYDANTIC_DISABLE_PLUGINS",
}


def _script(code: str, **fields: object) -> SandboxResult:
    """Run `code` as main.py in the sandbox with a generous wall-clock limit."""
    fields.setdefault("timeout_s", 20)
    request = SandboxRequest(
        argv=("python", "main.py"),
        files={"main.py": textwrap.dedent(code)},
        **fields,
    )
    return run_sandboxed(request)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _alive_in_group(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and _alive(int(entry.name)):
            members.append(int(entry.name))
    return members


def test_busy_loop_ends_as_cpu_limit() -> None:
    """An endless computation is killed at the CPU limit, long before the timeout."""
    result = _script("while True:\n    pass\n", cpu_s=1)
    assert result.status == "cpu_limit"
    assert result.returncode is not None and result.returncode < 0
    assert "CPU" in result.message


def test_sleeping_program_ends_as_timeout() -> None:
    """A program that never finishes but uses no CPU is stopped at the timeout."""
    result = _script("import time\ntime.sleep(600)\n", timeout_s=1, cpu_s=5)
    assert result.status == "timeout"
    assert "wall-clock" in result.message


def test_memory_bomb_ends_as_memory_limit() -> None:
    """Allocating in a loop hits the address-space cap and reports memory_limit."""
    code = "blocks = []\nwhile True:\n    blocks.append(bytearray(10**7))\n"
    result = _script(code, memory_mb=256)
    assert result.status == "memory_limit"
    assert "MemoryError" in result.stderr
    assert "256 MB" in result.message


def test_large_file_ends_as_file_size_limit() -> None:
    """Writing past RLIMIT_FSIZE fails and is reported as file_size_limit."""
    result = _script("open('big.bin', 'wb').write(b'x' * 3 * 2**20)\n", file_size_mb=1)
    assert result.status == "file_size_limit"


def test_fork_is_refused_by_the_guard() -> None:
    """Without allow_subprocess the first fork raises a sandbox PermissionError."""
    result = _script("import os\nwhile True:\n    os.fork()\n", max_processes=4)
    assert result.status == "forbidden"
    assert "sandbox: starting processes is not allowed (os.fork)" in result.message


def test_fork_bomb_hits_the_process_limit_and_leaves_no_process() -> None:
    """Forking sleepers stops at max_processes, and the whole group is killed."""
    code = """
        import os, time
        print(os.getpgid(0), flush=True)
        while True:
            if os.fork() == 0:
                time.sleep(600)
                os._exit(0)
    """
    result = _script(code, max_processes=4, allow_subprocess=True)
    assert result.status == "process_limit"
    pgid = int(result.stdout.split()[0])
    assert _alive_in_group(pgid) == []


@pytest.mark.usefixtures("dropped_privileges")
def test_process_that_left_the_group_is_killed_too() -> None:
    """A grandchild that called setsid is still killed (by uid) after the run."""
    code = """
        import os, time
        read_end, write_end = os.pipe()
        if os.fork() == 0:
            os.setsid()
            os.write(write_end, str(os.getpid()).encode())
            time.sleep(600)
            os._exit(0)
        print(os.read(read_end, 32).decode(), flush=True)
    """
    result = _script(code, allow_subprocess=True)
    assert result.status == "ok"
    assert not _alive(int(result.stdout.strip()))


@pytest.mark.parametrize(
    "operation",
    [
        "open({target!r}, 'w').write('escaped')",
        "import os; os.mkdir({target!r})",
        "import os; open('inside', 'w').close(); os.replace('inside', {target!r})",
    ],
    ids=["open", "mkdir", "rename"],
)
@pytest.mark.parametrize("where", ["tmp_path", "repo"])
def test_write_outside_scratch_is_refused(
    operation: str, where: str, tmp_path: Path
) -> None:
    """Creating a file in the test's tmp_path or in the repo is refused."""
    base = tmp_path if where == "tmp_path" else REPO
    target = base / f"sandbox_escape_{uuid.uuid4().hex}"
    try:
        result = _script(operation.format(target=str(target)) + "\n")
        assert not target.exists()
    finally:
        if target.is_dir():
            target.rmdir()
        target.unlink(missing_ok=True)
    assert result.status == "forbidden"
    assert str(target) in result.message


@pytest.mark.usefixtures("dropped_privileges")
def test_write_that_bypasses_the_guard_is_stopped_by_file_permissions(
    tmp_path: Path,
) -> None:
    """A raw libc open (no audit event) still fails: the uid cannot write there."""
    target = tmp_path / "raw.txt"
    code = f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.open({str(target).encode()!r}, os.O_WRONLY | os.O_CREAT, 0o644)
        print(fd, ctypes.get_errno())
    """
    result = _script(code)
    assert not target.exists()
    assert result.stdout.split()[0] == "-1"


def test_loopback_listener_is_unreachable_without_network() -> None:
    """With the network off the child cannot connect to a listening host socket."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.setblocking(False)
        port = listener.getsockname()[1]
        code = f"""
            import socket
            socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
            print("connected")
        """
        result = _script(code)
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert result.status in ("forbidden", "exit_error")
    assert "connected" not in result.stdout


def test_loopback_listener_is_reachable_with_network() -> None:
    """The control case: with network=True the same connection succeeds."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        code = f"""
            import socket
            socket.create_connection(("127.0.0.1", {port}), timeout=5).close()
            print("connected")
        """
        result = _script(code, network=True)
        listener.settimeout(5)
        connection, _ = listener.accept()
        connection.close()
    assert result.status == "ok"
    assert result.stdout.strip() == "connected"


def test_output_file_is_collected() -> None:
    """A normal script's out.json comes back in `files`; a missing one is noted."""
    code = """
        import json
        with open("out.json", "w") as handle:
            json.dump({"rows": [1, 2, 3]}, handle)
        print("done")
    """
    result = _script(code, collect=("out.json", "absent.json"))
    assert result.status == "ok"
    assert result.message == "The program exited normally."
    assert json.loads(result.files["out.json"]) == {"rows": [1, 2, 3]}
    assert "absent.json" not in result.files
    assert any(note.startswith("absent.json") for note in result.notes)


def test_collected_symlink_out_of_scratch_is_not_read() -> None:
    """An output that is a symlink to a host file is not read back."""
    code = "import os\nos.symlink('/etc/hostname', 'out.txt')\n"
    result = _script(code, collect=("out.txt",))
    assert result.status == "ok"
    assert result.files == {}


def test_parent_secrets_are_invisible_in_the_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The child sees the scrubbed environment plus request.env, never the parent's."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-parent-secret")
    code = "import json, os\nprint(json.dumps(dict(os.environ)))\n"
    result = _script(code, env={"EXTRA_SETTING": "1"})
    seen = json.loads(result.stdout)
    assert "OPENAI_API_KEY" not in seen
    assert "sk-test-parent-secret" not in result.stdout
    assert set(seen) - {"LC_CTYPE"} == _BASE_ENV | {"EXTRA_SETTING"}
    assert seen["HOME"] == os.path.dirname(seen["TMPDIR"])
    assert seen["PYTHONHASHSEED"] == "0"
    # installed pydantic plugins (third-party code) never load in the sandbox
    assert seen["PYDANTIC_DISABLE_PLUGINS"] == "__all__"


def test_read_only_path_is_readable_but_not_writable(tmp_path: Path) -> None:
    """Files under read_only_paths can be read; writing next to them is refused."""
    database = tmp_path / "database"
    database.mkdir()
    table = database / "patients.json"
    table.write_text('{"p1": {"name": "Ana"}}', encoding="utf-8")
    read = _script(
        f"print(open({str(table)!r}).read())\n", read_only_paths=(str(database),)
    )
    write = _script(
        f"open({str(table)!r}, 'w').write('{{}}')\n", read_only_paths=(str(database),)
    )
    assert read.status == "ok"
    assert json.loads(read.stdout) == {"p1": {"name": "Ana"}}
    assert write.status == "forbidden"
    assert table.read_text(encoding="utf-8") == '{"p1": {"name": "Ana"}}'


def test_pytest_runs_inside_the_sandbox() -> None:
    """A generated test file runs under `python -m pytest` with the guard on."""
    test_code = """
        def test_tmp_path_is_writable(tmp_path):
            (tmp_path / "x.txt").write_text("ok")
            assert (tmp_path / "x.txt").read_text() == "ok"
    """
    request = SandboxRequest(
        argv=("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_x.py"),
        files={"test_x.py": textwrap.dedent(test_code)},
        timeout_s=60,
    )
    result = run_sandboxed(request)
    assert result.status == "ok", result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_long_output_is_capped_with_a_marker() -> None:
    """Output over max_output_chars keeps head and tail around a marker."""
    code = "print('h' + 'x' * 100_000 + 't')\n"
    result = _script(code, max_output_chars=1000)
    assert len(result.stdout) < 1100
    assert result.stdout.startswith("h") and result.stdout.rstrip().endswith("t")
    assert "sandbox:" in result.stdout


def test_scratch_dir_is_removed_unless_kept() -> None:
    """The run directory is deleted after the run; keep=True leaves it for debugging."""
    code = "import os\nprint(os.getcwd())\n"
    removed = _script(code)
    kept = _script(code, keep=True)
    try:
        assert not Path(removed.stdout.strip()).exists()
        assert kept.scratch_dir == kept.stdout.strip()
        assert (Path(kept.scratch_dir) / "main.py").is_file()
    finally:
        if kept.scratch_dir:
            shutil.rmtree(Path(kept.scratch_dir).parent)


def test_missing_program_is_a_sandbox_error() -> None:
    """An argv[0] not on the sandbox PATH is reported, not raised."""
    result = run_sandboxed(SandboxRequest(argv=("no-such-program-xyz",)))
    assert result.status == "sandbox_error"
    assert result.returncode is None
    assert "no-such-program-xyz" in result.message


@pytest.mark.parametrize(
    "fields",
    [
        {"argv": ("python", "x.py"), "files": {"../escape.py": ""}},
        {"argv": ("python", "x.py"), "files": {"/etc/escape.py": ""}},
        {"argv": ("python", "x.py"), "collect": ("a/../../b",)},
        {"argv": ("python", "x.py"), "read_only_paths": ("relative/db",)},
        {"argv": ("python", "-I", "x.py")},
        {"argv": ("python", "-S", "-m", "pytest")},
        {"argv": ("python", "x.py"), "env": {"A=B": "1"}},
    ],
)
def test_request_rejects_unsafe_fields(fields: dict[str, object]) -> None:
    """Paths leaving the scratch dir and flags that disable the guard are invalid."""
    with pytest.raises(ValidationError):
        SandboxRequest(**fields)


def test_result_round_trips_through_json() -> None:
    """A result serialises and parses back to an equal model."""
    result = _script("print('hi')\n")
    assert SandboxResult.model_validate_json(result.model_dump_json()) == result


@pytest.mark.parametrize(
    ("event", "args", "refused"),
    [
        ("open", ("{scratch}/a.txt", "w", os.O_WRONLY | os.O_CREAT), False),
        ("open", ("/etc/passwd", "r", os.O_RDONLY), False),
        ("open", ("/etc/sandbox_probe", "w", os.O_WRONLY | os.O_CREAT), True),
        ("open", ("{scratch}/link/x", None, os.O_WRONLY | os.O_CREAT), True),
        ("open", ("/dev/null", "w", os.O_WRONLY), False),
        ("os.rename", ("{scratch}/a", "/etc/b", -1, -1), True),
        ("os.remove", ("/etc/hosts", -1), True),
        ("os.fork", (), True),
        ("socket.getaddrinfo", ("example.com", 80, 0, 0, 0), True),
        ("socket.getaddrinfo", ("127.0.0.1", 80, 0, 0, 0), False),
        ("compile", (b"", "<string>"), False),
    ],
)
def test_guard_decides_each_audit_event(
    event: str, args: tuple[object, ...], refused: bool, tmp_path: Path
) -> None:
    """The hook's pure decision: writes stay in scratch (symlinks resolved)."""
    (tmp_path / "link").symlink_to("/etc")
    policy = GuardPolicy(writable_roots=(str(tmp_path.resolve()),))
    filled = tuple(
        arg.format(scratch=tmp_path) if isinstance(arg, str) else arg for arg in args
    )
    message = refusal(policy, event, filled)
    assert (message is not None) == refused
    assert message is None or message.startswith("sandbox:")


def test_parent_is_healthy_after_the_abuse() -> None:
    """After every test above, the parent's limits are intact and jobs still run."""
    assert {w: resource.getrlimit(w) for w in _WATCHED_LIMITS} == _PARENT_LIMITS
    result = _script("print(sum(range(10)))\n")
    assert result.status == "ok"
    assert result.stdout.strip() == "45"


def test_stop_running_ends_a_running_program_long_before_its_timeout() -> None:
    """An interrupted orchestrator stops its sandboxed programs at once: the run
    returns (killed, not timed out) and nothing is left running."""
    import threading

    from tasks.runtime import sandbox_launch

    results: list[SandboxResult] = []
    worker = threading.Thread(
        target=lambda: results.append(
            _script("import time\ntime.sleep(600)\n", timeout_s=600, cpu_s=600)
        )
    )
    worker.start()
    # wait until the program has started (it registers itself when launched)
    while not sandbox_launch._RUNNING and worker.is_alive():
        worker.join(0.05)
    assert sandbox_launch.stop_running() == 1
    worker.join(timeout=120)
    assert not worker.is_alive()
    [result] = results
    assert result.status != "timeout" and not result.ok

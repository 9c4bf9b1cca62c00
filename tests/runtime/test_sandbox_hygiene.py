"""Tests of sandbox scratch and lock hygiene: concurrent runs cannot see each
other's files, children die with their orchestrator and its leftovers are swept,
the scratch directory is bounded in total size, and a pre-planted state or lock
directory is refused. Every test starts real child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from schemas.sandbox import SandboxRequest
from tasks.runtime import sandbox_dirs
from tasks.runtime.sandbox import run_sandboxed
from tasks.runtime.sandbox_dirs import private_dir, runs_dir
from tasks.runtime.sandbox_files import SandboxSetupError
from tasks.runtime.sandbox_process import SandboxProcess
from tests.conftest import REPO
from tests.runtime.processes import DEADLINE_S, await_descendant, await_gone

_OTHER_UID = 59_999


def test_concurrent_sandboxes_cannot_list_or_read_each_others_files(
    dropped_privileges: None,
):
    """While one run holds a secret in its scratch dir, a second run (another
    pool uid) can neither list nor read that dir, nor list the first run's root."""
    holder = SandboxRequest(
        argv=("python", "hold.py"),
        files={
            "hold.py": textwrap.dedent(
                """
                import os, sys
                with open("secret.txt", "w") as handle:
                    handle.write("only mine")
                print(os.getcwd(), flush=True)
                sys.stdin.readline()
                """
            )
        },
    )
    with SandboxProcess(holder) as first:
        reply = first.receive(DEADLINE_S, 4096)
        assert reply.line is not None, first.stderr_tail()
        scratch = reply.line.decode()
        assert Path(scratch, "secret.txt").read_text() == "only mine"
        probe = textwrap.dedent(
            f"""
            import json, os
            outcome = {{}}
            for name, attempt in (
                ("list_scratch", lambda: os.listdir({scratch!r})),
                ("read_secret", lambda: open({scratch!r} + "/secret.txt").read()),
                ("list_root", lambda: os.listdir(os.path.dirname({scratch!r}))),
                ("list_runs", lambda: os.listdir({str(runs_dir())!r})),
            ):
                try:
                    outcome[name] = repr(attempt())
                except PermissionError:
                    outcome[name] = "denied"
            print(json.dumps(outcome))
            """
        )
        second = run_sandboxed(
            SandboxRequest(argv=("python", "probe.py"), files={"probe.py": probe})
        )
    assert second.ok, second.stderr
    assert json.loads(second.stdout) == {
        "list_scratch": "denied",
        "read_secret": "denied",
        "list_root": "denied",
        "list_runs": "denied",
    }


def test_children_die_with_a_killed_orchestrator_and_leftovers_are_swept():
    """SIGKILL of an orchestrator kills its sandboxed sleeper (parent-death
    signal); the next sandbox start removes the dead orchestrator's run dir."""
    code = textwrap.dedent(
        """
        from schemas.sandbox import SandboxRequest
        from tasks.runtime.sandbox import run_sandboxed
        run_sandboxed(SandboxRequest(
            argv=("python", "sleeper.py"),
            files={"sleeper.py": "import time\\ntime.sleep(600)\\n"},
            timeout_s=600,
        ))
        """
    )
    orchestrator = subprocess.Popen([sys.executable, "-c", code], cwd=REPO)
    try:
        sleeper = await_descendant(orchestrator.pid, b"sleeper.py")
        leftovers = [
            path
            for path in runs_dir().iterdir()
            if path.name.startswith(f"{orchestrator.pid}.")
        ]
        assert len(leftovers) == 1 and leftovers[0].exists()
        os.kill(orchestrator.pid, signal.SIGKILL)
    finally:
        orchestrator.kill()
        orchestrator.wait()
    await_gone(sleeper)
    # Any sandbox start sweeps it (another test process on this host may be first).
    assert run_sandboxed(SandboxRequest(argv=("python", "-c", "pass"))).ok
    assert not leftovers[0].exists()


def test_the_next_start_kills_what_a_dead_orchestrators_run_left_behind(
    dropped_privileges: None,
):
    """A grandchild (which the parent-death signal does not reach) of a run whose
    orchestrator was killed is killed by the next sandbox start, even when that
    start reserves another pool uid."""
    holder = SandboxRequest(
        argv=("python", "-c", "import sys; print('up', flush=True); sys.stdin.read()")
    )
    code = textwrap.dedent(
        """
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)",
                          "grandchild"])
        time.sleep(600)
        """
    )
    orchestrator_code = textwrap.dedent(
        f"""
        from schemas.sandbox import SandboxRequest
        from tasks.runtime.sandbox import run_sandboxed
        run_sandboxed(SandboxRequest(
            argv=("python", "parent.py"), files={{"parent.py": {code!r}}},
            allow_subprocess=True, timeout_s=600,
        ))
        """
    )
    with SandboxProcess(holder) as lowest:
        assert lowest.receive(DEADLINE_S, 100).line == b"up"
        second = SandboxProcess(holder)
        assert second.receive(DEADLINE_S, 100).line == b"up"
        orchestrator = subprocess.Popen(
            [sys.executable, "-c", orchestrator_code], cwd=REPO
        )
        try:
            grandchild = await_descendant(orchestrator.pid, b"grandchild")
            parent = await_descendant(orchestrator.pid, b"parent.py")
            second.stop()  # the next start reserves this uid, not the dead run's
            os.kill(orchestrator.pid, signal.SIGKILL)
        finally:
            orchestrator.kill()
            orchestrator.wait()
            second.stop()
        await_gone(parent)
        assert Path(f"/proc/{grandchild}").exists()  # the signal did not reach it
        assert run_sandboxed(SandboxRequest(argv=("python", "-c", "pass"))).ok
        await_gone(grandchild)


def test_many_small_files_beyond_the_total_bound_end_as_disk_limit():
    """No single file is large, but their total exceeds `disk_mb`: the run is
    stopped with the typed status."""
    code = textwrap.dedent(
        """
        import itertools
        for index in itertools.count():
            with open(f"part-{index}.bin", "wb") as handle:
                handle.write(b"x" * 65536)
        """
    )
    result = run_sandboxed(
        SandboxRequest(
            argv=("python", "fill.py"),
            files={"fill.py": code},
            disk_mb=4,
            file_size_mb=1,
            timeout_s=DEADLINE_S,
        )
    )
    assert result.status == "disk_limit"
    assert result.message == (
        "The program wrote more than 4 MB in total to its scratch directory and "
        "was stopped."
    )


def test_a_run_that_exits_above_the_total_bound_is_still_disk_limit():
    """Files written faster than the watch checks are caught at the end."""
    code = "for i in range(200):\n    open(f'f{i}', 'wb').write(b'x' * 65536)\n"
    result = run_sandboxed(
        SandboxRequest(argv=("python", "fill.py"), files={"fill.py": code}, disk_mb=4)
    )
    assert result.status == "disk_limit"


@pytest.mark.parametrize(
    ("plant", "reason"),
    [
        ("mode", "has mode 0777, expected 0700"),
        ("owner", f"is owned by uid {_OTHER_UID}"),
        ("symlink", "is not a directory"),
    ],
)
def test_a_pre_planted_directory_is_refused(
    tmp_path: Path, plant: str, reason: str
) -> None:
    """A lock directory someone else created, or left open, is never used."""
    target = tmp_path / "locks"
    if plant == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        target.symlink_to(tmp_path / "elsewhere")
    else:
        target.mkdir()
        target.chmod(0o777 if plant == "mode" else 0o700)
    if plant == "owner":
        if os.geteuid() != 0:
            pytest.skip("only root can plant a directory owned by another uid")
        os.chown(target, _OTHER_UID, _OTHER_UID)
    with pytest.raises(SandboxSetupError, match=reason):
        private_dir(target, 0o700)


def test_a_directory_under_a_shared_writable_parent_is_refused(tmp_path: Path):
    """A parent others can write (without the sticky bit) could swap the dir."""
    tmp_path.chmod(0o777)
    with pytest.raises(SandboxSetupError, match="without the sticky bit"):
        private_dir(tmp_path / "locks", 0o700)


def test_run_refuses_a_planted_lock_directory(
    dropped_privileges: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A run whose lock directory was planted by another uid is a sandbox error
    that names the problem, and nothing runs."""
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o711)  # mkdir applies the umask (0077 on some hosts)
    (state / "locks").mkdir(mode=0o700)
    os.chown(state / "locks", _OTHER_UID, _OTHER_UID)
    monkeypatch.setattr(sandbox_dirs, "ROOT_STATE_DIR", state)
    result = run_sandboxed(SandboxRequest(argv=("python", "-c", "print('ran')")))
    assert result.status == "sandbox_error"
    assert f"is owned by uid {_OTHER_UID}" in result.message
    assert result.stdout == ""


def test_concurrent_creators_under_a_strict_umask_all_accept_the_directory(
    tmp_path: Path,
):
    """Under umask 0077 (some CI hosts), many threads creating the same state
    directory at once all get it with mode 0711; none sees it half-made."""
    import threading

    target = tmp_path / "runs"
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def create() -> None:
        start.wait()
        try:
            private_dir(target, 0o711)
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    old = os.umask(0o077)
    try:
        for _ in range(20):
            if target.exists():
                target.rmdir()
            threads = [threading.Thread(target=create) for _ in range(16)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    finally:
        os.umask(old)
    assert errors == []
    assert (target.stat().st_mode & 0o777) == 0o711
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_removing_a_run_dir_never_changes_the_directory_that_holds_it(
    tmp_path: Path,
):
    """Removing a run directory that is already gone, or whose program locked a
    sub-directory and planted a symlink to a file outside, leaves the shared
    parent's mode and the outside file's mode as they were, and removes what is
    there."""
    from tasks.runtime.sandbox_files import remove_tree

    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o711)
    remove_tree(runs / "already-gone")
    assert (runs.stat().st_mode & 0o777) == 0o711

    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    outside.chmod(0o644)
    run = runs / "1.2-abc"
    locked = run / "scratch" / "locked"
    locked.mkdir(parents=True)
    (locked / "link").symlink_to(outside)
    (locked / "file").write_text("x")
    locked.chmod(0o500)  # what a program may do to its own scratch
    remove_tree(run)
    assert not run.exists()
    assert (runs.stat().st_mode & 0o777) == 0o711
    assert (outside.stat().st_mode & 0o777) == 0o644 and outside.read_text() == "keep"


def test_an_own_directory_that_is_only_too_strict_is_set_right(tmp_path: Path):
    """`runs` left at 0700 (by an older release's cleanup) is given its 0711 again
    rather than refusing every sandbox start; a looser mode is still refused."""
    runs = tmp_path / "runs"
    runs.mkdir()
    runs.chmod(0o700)
    assert private_dir(runs, 0o711) == runs
    assert (runs.stat().st_mode & 0o777) == 0o711
    runs.chmod(0o731)
    with pytest.raises(SandboxSetupError, match="has mode 0731, expected 0711"):
        private_dir(runs, 0o711)


def test_concurrent_sweeps_of_a_dead_run_leave_runs_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Sandbox starts in many threads sweep the same dead orchestrator's run dir at
    once; the losers' failed removals must not change `runs`, so the next start
    still accepts it."""
    import threading

    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o711)
    monkeypatch.setattr(sandbox_dirs, "ROOT_STATE_DIR", state)
    monkeypatch.setattr(sandbox_dirs, "state_dir", lambda: private_dir(state, 0o711))
    for attempt in range(5):
        dead = runs_dir() / f"999999{attempt}.1-dead"
        for n in range(40):
            (dead / f"d{n}").mkdir(parents=True)
            for m in range(20):
                (dead / f"d{n}" / f"f{m}").write_text("x")
        start = threading.Barrier(8)

        def sweep(start: threading.Barrier = start) -> None:
            start.wait()
            sandbox_dirs.sweep_dead_runs()

        threads = [threading.Thread(target=sweep) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not dead.exists()
        assert (runs_dir().stat().st_mode & 0o777) == 0o711

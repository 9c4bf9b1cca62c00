"""Tests of the exec'd limits prefix: the limits reach the program, and a sandboxed
run in a process that has used LanceDB runs no fork hook (so prints no warning)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap

import pytest

from tasks.runtime.spawn_limits import (
    limit_plan,
    prlimit_prefix,
    trampoline_prefix,
)
from tests.conftest import REPO

_SHOW_LIMITS = (
    "import json,resource;"
    "print(json.dumps({w: resource.getrlimit(w) for w in map(int, %r)}))"
)
_PRLIMIT = shutil.which("prlimit", path="/usr/bin:/bin")
FORK_WARNING = "lancedb fork support is experimental"


def _limits_seen(prefix: list[str], plan) -> dict[int, list[int]]:
    code = _SHOW_LIMITS % ([which for which, _, _ in plan],)
    done = subprocess.run(
        [*prefix, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
    )
    return {int(k): v for k, v in json.loads(done.stdout).items()}


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(
            "prlimit",
            marks=pytest.mark.skipif(_PRLIMIT is None, reason="needs prlimit"),
        ),
        "trampoline",
    ],
)
def test_the_program_runs_under_exactly_the_planned_limits(variant: str) -> None:
    """Both prefixes set every planned (soft, hard) pair before the program starts."""
    plan = limit_plan(cpu_s=7, memory_mb=3000, file_size_mb=5, nproc=4000)
    prefix = (
        prlimit_prefix(_PRLIMIT or "", plan)
        if variant == "prlimit"
        else trampoline_prefix(plan)
    )
    seen = _limits_seen(prefix, plan)
    assert seen == {which: [soft, hard] for which, soft, hard in plan}
    assert seen[resource.RLIMIT_CPU] == [7, 8]
    assert seen[resource.RLIMIT_CORE] == [0, 0]


def test_the_plan_never_asks_for_more_than_the_parent_hard_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Values above our own hard limits are clamped, so lowering cannot fail."""
    monkeypatch.setattr(resource, "getrlimit", lambda which: (10, 100))
    plan = limit_plan(cpu_s=500, memory_mb=1, file_size_mb=1, nproc=50)
    assert dict((w, (s, h)) for w, s, h in plan) == {
        resource.RLIMIT_CPU: (100, 100),
        resource.RLIMIT_AS: (100, 100),
        resource.RLIMIT_FSIZE: (100, 100),
        resource.RLIMIT_NPROC: (50, 50),
        resource.RLIMIT_CORE: (0, 0),
    }


_AFTER_LANCEDB = textwrap.dedent(
    """
    import subprocess, sys, tempfile
    import lancedb

    db = lancedb.connect(tempfile.mkdtemp())
    db.create_table("t", data=[{"vector": [0.0, 1.0], "id": "a"}])
    if sys.argv[1] == "sandbox":
        from schemas.sandbox import SandboxRequest
        from tasks.runtime.sandbox import run_sandboxed

        request = SandboxRequest(argv=("python", "-c", "print('ran')"))
        result = run_sandboxed(request)
        print(result.status, result.stdout.strip())
    else:  # the old way, to show that this process would warn
        subprocess.run(["true"], preexec_fn=lambda: None, check=True)
        print("ok ran")
    """
)


def _after_lancedb(mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "always::RuntimeWarning"}
    return subprocess.run(
        [sys.executable, "-c", _AFTER_LANCEDB, mode],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    )


@pytest.mark.slow
def test_a_sandboxed_run_after_lancedb_prints_no_fork_warning() -> None:
    """LanceDB's after-fork hook never runs for a sandbox child, so stderr stays
    clean; a preexec_fn child of the same process does trigger it."""
    done = _after_lancedb("sandbox")
    assert done.stdout == "ok ran\n"
    assert FORK_WARNING not in done.stderr
    control = _after_lancedb("preexec")
    assert control.stdout == "ok ran\n"
    assert FORK_WARNING in control.stderr

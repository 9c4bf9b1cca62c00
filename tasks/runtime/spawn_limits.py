"""Resource limits for a sandboxed child, applied without running Python after fork.

Input: the run's limits (CPU seconds, address space, file size, process count).
Output: an argv prefix that applies them and then executes the rest of the argv.
No side effects; finding `prlimit` looks at the system PATH once per process.

Why not `subprocess.Popen(preexec_fn=...)`: with a `preexec_fn`, CPython forks and
runs Python code in the child, including every `os.register_at_fork` hook of the
orchestrator. LanceDB's hook (`lancedb.background_loop._reset_after_fork`) starts
a new asyncio thread and thread pool in that copy of a multi-threaded process and
warns "lancedb fork support is experimental" on our stderr, once per sandboxed
run; any lock another thread held at fork time can deadlock the child. Without a
`preexec_fn` CPython starts the child with vfork/exec (or fork/exec with only
async-signal-safe C code in between) and runs no hooks. The limits are then set
by the first program the child executes, on itself, before it executes the rest:
`prlimit` from util-linux where it exists (a few ms), else the orchestrator's
interpreter in isolated mode without `site` (slower, same effect). Either way the
limits hold for every later program of the chain, as `setrlimit` in `preexec_fn`
did, and are inherited by the program's own children.
"""

from __future__ import annotations

import functools
import os
import resource
import shutil
import sys

_MIB = 1024 * 1024
_SYSTEM_PATH = ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")
_PRLIMIT_OPTION = {
    resource.RLIMIT_CPU: "--cpu",
    resource.RLIMIT_AS: "--as",
    resource.RLIMIT_FSIZE: "--fsize",
    resource.RLIMIT_NPROC: "--nproc",
    resource.RLIMIT_CORE: "--core",
}
# Runs as `python -I -S -c _TRAMPOLINE "which:soft:hard,..." program args...`.
_TRAMPOLINE = (
    "import os,resource,sys\n"
    "for item in sys.argv[1].split(','):\n"
    "    which,soft,hard=map(int,item.split(':'))\n"
    "    resource.setrlimit(which,(soft,hard))\n"
    "os.execv(sys.argv[2],sys.argv[2:])"
)

LimitPlan = tuple[tuple[int, int, int], ...]


def limits_prefix(plan: LimitPlan) -> list[str]:
    """argv prefix that applies the run's rlimits, then executes what follows it.

    Use it in front of the whole child argv (before `unshare`/`setpriv`) and
    start the child without `preexec_fn`.

    Args:
        plan: The run's limits (`limit_plan`).

    Returns:
        The prefix; what follows it must start with an absolute program path.
    """
    prlimit = _prlimit()
    if prlimit is not None:
        return prlimit_prefix(prlimit, plan)
    return trampoline_prefix(plan)


def limit_plan(
    *, cpu_s: int | None, memory_mb: int, file_size_mb: int, nproc: int
) -> LimitPlan:
    """The (resource, soft, hard) triples of one run, clamped to our hard limits
    (so lowering never fails).

    Args:
        cpu_s: CPU seconds (SIGXCPU at this, SIGKILL one second later); None
            for no CPU limit (a long-lived server).
        memory_mb: Address-space cap.
        file_size_mb: Largest file the program may write.
        nproc: RLIMIT_NPROC value (tasks of the child's real uid).
    """
    wanted = {
        resource.RLIMIT_AS: (memory_mb * _MIB, memory_mb * _MIB),
        resource.RLIMIT_FSIZE: (file_size_mb * _MIB, file_size_mb * _MIB),
        resource.RLIMIT_NPROC: (nproc, nproc),
        resource.RLIMIT_CORE: (0, 0),
    }
    if cpu_s is not None:
        wanted[resource.RLIMIT_CPU] = (cpu_s, cpu_s + 1)
    plan = []
    for which, (soft, hard) in wanted.items():
        current = resource.getrlimit(which)[1]
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        plan.append((which, soft, hard))
    return tuple(plan)


def prlimit_prefix(prlimit: str, plan: LimitPlan) -> list[str]:
    """The prefix using util-linux `prlimit PROGRAM`."""
    options = [f"{_PRLIMIT_OPTION[which]}={soft}:{hard}" for which, soft, hard in plan]
    return [prlimit, *options, "--"]


def trampoline_prefix(plan: LimitPlan) -> list[str]:
    """The prefix using this interpreter (`-I -S`: no site, no PYTHON* variables)."""
    spec = ",".join(f"{which}:{soft}:{hard}" for which, soft, hard in plan)
    return [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, spec]


@functools.cache
def _prlimit() -> str | None:
    found = shutil.which("prlimit", path=os.pathsep.join(_SYSTEM_PATH))
    return os.path.realpath(found) if found else None

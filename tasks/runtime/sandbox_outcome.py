"""Turn how a sandboxed program ended into a typed status and one sentence.

Inputs: the return code, whether the wall-clock timeout fired, the (capped) output
streams and the request's limits. Outputs: capped text read from the output files
(head and tail kept around a marker line) and `(SandboxStatus, message)`, where the
message is one sentence fit for a report or for a model's re-ask. No side effects
besides reading the output files.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

from schemas.sandbox import SandboxRequest, SandboxStatus
from tasks.runtime.sandbox_guard import GUARD_FAILURE_EXIT, MARKER

_FORBIDDEN = re.compile(rf"PermissionError: ({re.escape(MARKER)}[^\n]*)")
_GUARD_FAILED = re.compile(rf"^{re.escape(MARKER)} the guard could not start", re.M)
_MEMORY = re.compile(
    r"\bMemoryError\b|Cannot allocate memory|std::bad_alloc|[Oo]ut of memory"
)
_FILE_SIZE = re.compile(r"File too large")
_PROCESSES = re.compile(
    r"BlockingIOError: \[Errno 11\]|Resource temporarily unavailable"
    r"|can't start new thread"
)
_DETAIL_CHARS = 300
_BYTES_PER_CHAR = 4


def cap_text(text: str, cap: int) -> str:
    """Keep the head and tail of `text` within about `cap` characters.

    Args:
        text: Any text.
        cap: Largest number of kept characters.

    Returns:
        `text` itself when short enough, else head, a marker line and tail.
    """
    if len(text) <= cap:
        return text
    head = cap // 4
    tail = cap - head
    omitted = len(text) - head - tail
    return (
        f"{text[:head]}\n[... sandbox: {omitted} characters omitted ...]\n"
        f"{text[-tail:]}"
    )


def read_capped(path: Path, cap: int) -> str:
    """Read an output file without loading more than about `cap` characters.

    Args:
        path: The file the child's stream was redirected to.
        cap: Largest number of kept characters.

    Returns:
        The decoded (UTF-8, invalid bytes replaced) and capped text.
    """
    limit = cap * _BYTES_PER_CHAR
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(0)
        if size <= limit:
            return cap_text(handle.read().decode("utf-8", "replace"), cap)
        head = handle.read(limit // 4).decode("utf-8", "replace")[: cap // 4]
        handle.seek(size - (limit - limit // 4))
        tail = handle.read().decode("utf-8", "replace")[-(cap - cap // 4) :]
    return f"{head}\n[... sandbox: output cut to its head and tail ...]\n{tail}"


def classify(
    request: SandboxRequest,
    *,
    returncode: int,
    timed_out: bool,
    stdout: str,
    stderr: str,
) -> tuple[SandboxStatus, str]:
    """Name how the run ended.

    Args:
        request: The request (for its limits, quoted in the message).
        returncode: The main process's return code (negative: killed by a signal).
        timed_out: True when the runner killed the run at the wall-clock limit.
        stdout: The capped standard output.
        stderr: The capped standard error.

    Returns:
        The status and a one-sentence message.
    """
    both = f"{stderr}\n{stdout}"
    if timed_out:
        return "timeout", (
            f"The program was stopped after exceeding the {request.timeout_s:g} s "
            "wall-clock limit."
        )
    if returncode == 0:
        return "ok", "The program exited normally."
    if returncode == -signal.SIGXCPU:
        return "cpu_limit", (
            f"The program used more than {request.cpu_s} s of CPU time and was killed."
        )
    if returncode == -signal.SIGXFSZ:
        return "file_size_limit", _file_size_message(request)
    if returncode == GUARD_FAILURE_EXIT and _GUARD_FAILED.search(stderr):
        return "sandbox_error", "The sandbox guard could not start in the child."
    forbidden = _FORBIDDEN.search(both)
    if forbidden:
        detail = forbidden.group(1)[:_DETAIL_CHARS]
        return "forbidden", f"The program attempted a forbidden operation ({detail})."
    if returncode == -signal.SIGKILL or _MEMORY.search(both):
        return "memory_limit", (
            f"The program ran out of memory (limit {request.memory_mb} MB)."
        )
    if _FILE_SIZE.search(both):
        return "file_size_limit", _file_size_message(request)
    if _PROCESSES.search(both):
        return "process_limit", (
            "The program could not start another process or thread (limit "
            f"{request.max_processes})."
        )
    return "exit_error", _exit_message(returncode, stderr or stdout)


def disk_message(request: SandboxRequest) -> str:
    """The sentence for a run stopped by the total size bound of its scratch dir."""
    return (
        f"The program wrote more than {request.disk_mb} MB in total to its scratch "
        "directory and was stopped."
    )


def _file_size_message(request: SandboxRequest) -> str:
    return f"The program tried to write a file larger than {request.file_size_mb} MB."


def _exit_message(returncode: int, output: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        how = f"was killed by {name}"
    else:
        how = f"exited with code {returncode}"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return f"The program {how}."
    return f"The program {how}: {lines[-1][:_DETAIL_CHARS]}"

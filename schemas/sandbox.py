"""Request and result of one sandboxed run of generated code.

Inputs: none (pydantic models only). Output: `SandboxRequest` (what to run, which
files to place in the scratch directory, the limits and the permissions) and
`SandboxResult` (a typed status, the capped output streams, the collected output
files and a one-sentence message that can be shown to a model). No side effects:
the runner lives in `tasks.runtime.sandbox`.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from schemas.base import Frozen

SandboxStatus = Literal[
    "ok",
    "exit_error",
    "timeout",
    "memory_limit",
    "cpu_limit",
    "file_size_limit",
    "disk_limit",
    "process_limit",
    "forbidden",
    "sandbox_error",
]

# Interpreter flags that would skip `site` or ignore PYTHONPATH, and with them the
# guard that the runner installs as `sitecustomize`.
_GUARD_DISABLING_FLAGS = frozenset("ISE")
_FLAGS_WITH_VALUE = ("-W", "-X")


def _relative_path(value: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or "\\" in value or "\0" in value:
        raise ValueError(f"{value!r} must be a relative POSIX path")
    if any(part in ("..", ".") for part in value.split("/")) or "//" in value:
        raise ValueError(f"{value!r} must not contain '.', '..' or empty parts")
    return value


def _absolute_path(value: str) -> str:
    if not PurePosixPath(value).is_absolute() or "\0" in value:
        raise ValueError(f"{value!r} must be an absolute path")
    return value


RelativePath = Annotated[str, AfterValidator(_relative_path)]
"""A path inside the scratch directory, such as `out.json` or `tests/test_x.py`."""

AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]


class SandboxRequest(Frozen):
    """One program to run in a fresh scratch directory under limits.

    `argv[0] == "python"` means the orchestrator's own interpreter
    (`sys.executable`), so `("python", "script.py")` and
    `("python", "-m", "pytest", "-q")` run with the project's virtualenv.
    Any other `argv[0]` is looked up on the sandbox PATH; such programs get the
    OS limits but not the Python guard.
    """

    argv: tuple[str, ...] = Field(min_length=1)
    files: dict[RelativePath, str] = Field(
        default_factory=dict,
        description="Files written into the scratch directory before the run.",
    )
    read_only_paths: tuple[AbsolutePath, ...] = Field(
        default=(), description="Directories the program may read but not write."
    )
    python_path: tuple[AbsolutePath, ...] = Field(
        default=(), description="Extra PYTHONPATH entries (readable, not writable)."
    )
    timeout_s: float = Field(default=60.0, gt=0, le=24 * 3600)
    cpu_s: int = Field(default=60, ge=1, description="CPU seconds per process.")
    memory_mb: int = Field(default=2048, ge=32, description="Address space cap.")
    file_size_mb: int = Field(default=64, ge=1, description="Largest file written.")
    disk_mb: int = Field(
        default=1024,
        ge=1,
        description="Total size of the scratch directory (every file or directory "
        "counts at least 4 KiB); checked while the program runs and at its end.",
    )
    max_processes: int = Field(
        default=32, ge=1, description="Processes and threads, the main one included."
    )
    env: dict[str, str] = Field(default_factory=dict)
    network: bool = False
    allow_subprocess: bool = False
    stdin: str | None = None
    collect: tuple[RelativePath, ...] = Field(
        default=(), description="Scratch files read back after the run."
    )
    max_output_chars: int = Field(default=20_000, ge=200)
    keep: bool = Field(default=False, description="Keep the scratch directory.")
    warm: bool = Field(
        default=False,
        description="Fork the run from a template process that has already "
        "imported the program's module (`python -m MODULE ...` only; the module "
        "must be trusted project code, since the template imports it outside the "
        "sandbox). The run gets the same walls as a cold start.",
    )

    @model_validator(mode="after")
    def _warm_runs_a_module(self) -> SandboxRequest:
        if self.warm and (len(self.argv) < 3 or self.argv[:2] != ("python", "-m")):
            raise ValueError(
                f"warm=True needs argv ('python', '-m', MODULE, ...), got {self.argv!r}"
            )
        return self

    @field_validator("argv")
    @classmethod
    def _argv_keeps_the_guard(cls, argv: tuple[str, ...]) -> tuple[str, ...]:
        if not argv[0]:
            raise ValueError("argv[0] must name a program")
        if argv[0] != "python":
            return argv
        skip_next = False
        for arg in argv[1:]:
            if skip_next:
                skip_next = False
                continue
            if arg in _FLAGS_WITH_VALUE:
                skip_next = True
                continue
            if arg in ("-m", "-c", "-", "--") or not arg.startswith("-"):
                break
            if arg.startswith(_FLAGS_WITH_VALUE):
                continue
            if _GUARD_DISABLING_FLAGS & set(arg[1:]):
                raise ValueError(
                    f"python flag {arg!r} would disable the sandbox guard "
                    "(-I, -S and -E are not allowed)"
                )
        return argv

    @field_validator("env")
    @classmethod
    def _env_names_are_plain(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise ValueError(f"invalid environment variable {name!r}")
        return env


class SandboxResult(Frozen):
    """What happened in one sandboxed run.

    `stdout` and `stderr` keep their head and tail when longer than the request's
    cap, with a marker line in between. `message` is one sentence suitable for a
    report or for sending back to a model as the error. `notes` records where the
    host could not provide a protection (for example no network namespace).
    """

    status: SandboxStatus
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = Field(default=0.0, ge=0)
    files: dict[str, str] = Field(default_factory=dict)
    message: str
    notes: tuple[str, ...] = ()
    scratch_dir: str | None = Field(
        default=None, description="Set only when the request asked to keep it."
    )

    @property
    def ok(self) -> bool:
        """True when the program exited normally with code 0."""
        return self.status == "ok"

"""The error for a broken pipeline machine, as opposed to a bad model answer.

Input: what failed (the sandbox could not start a program, a harness could not
import what it needs) and why. Output: `MachineryError`, whose message says that
the model and the generated code are not at fault and what to fix. The fan-out
records it as a failed item with reason `machinery_error`; because the task raised,
Prefect caches nothing for it, so the next run redoes exactly those items. No side
effects.
"""

from __future__ import annotations

REINSTALL = (
    "reinstall the project's dependencies in this environment (pip install -e .)"
)


class MachineryError(RuntimeError):
    """The pipeline's own machinery failed for one item; a re-run repeats the
    failure until the cause (named in the message) is fixed."""

    def __init__(self, what: str, cause: str, remedy: str = REINSTALL) -> None:
        self.what = what
        self.cause = cause
        super().__init__(
            f"{what}: {cause}. This is a fault of the installation or the host, not "
            f"of the model or the code it wrote; {remedy}, then run the same command "
            "again (only the items that failed this way are redone)"
        )

"""Records the store keeps about an output location itself (not about artifacts).

Inputs: none (pydantic models only). Output: `RunLockHolder`, the content of
`.agentskiller/run.lock` while a run holds the output location. No side effects.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schemas.base import Frozen


class RunLockHolder(Frozen):
    """Who holds an output location, for the message a refused run prints."""

    pid: int = Field(ge=1)
    host: str
    since: datetime
    run_id: str
    command: str = ""

    def describe(self) -> str:
        """One line naming the holder: pid, host, start time, run and command."""
        text = (
            f"pid {self.pid} on host {self.host} since "
            f"{self.since.isoformat(timespec='seconds')} (run {self.run_id})"
        )
        return f"{text}, command: {self.command}" if self.command else text

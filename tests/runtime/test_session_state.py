"""A call can bring its session's state back: read after the call from an
in-process environment, in the same exchange from a server that can, and never
for a private session."""

from __future__ import annotations

from schemas.environment import DatabaseDiff, SessionState, ToolResult
from tasks.runtime.session_state import StateReportingServer, call_reporting
from tests.runtime import ANA


def test_an_in_process_call_reports_the_state_after_it(environment):
    """The state reported is the session's own after the call, and only what
    was asked for."""
    result, state = call_reporting(
        environment, "s", "authorize_patient", {"patient_id": ANA}, ["state_hash"]
    )
    assert not result.is_error, result.error
    assert state == SessionState(state_hash=environment.state_hash("s"))
    _, both = call_reporting(
        environment, "s", "list_clinics", {}, ["state_hash", "diff"]
    )
    assert both.diff == environment.diff("s") and both.diff.empty
    _, nothing = call_reporting(environment, "s", "list_clinics", {}, [])
    assert nothing == SessionState()


def test_a_private_session_reports_no_state(environment):
    """A call without a session runs in a private one that is dropped after it:
    there is no state of it left to report."""
    result, state = call_reporting(
        environment, None, "authorize_patient", {"patient_id": ANA}, ["state_hash"]
    )
    assert not result.is_error, result.error
    assert state == SessionState()


class _OneExchange:
    """A server that answers a call and its state together (as the sandboxed
    environment does), and records which of its methods ran."""

    spec = None

    def __init__(self) -> None:
        self.used: list[str] = []

    def call(self, session_id, tool, arguments=None):
        self.used.append("call")
        return ToolResult(tool=tool, content={})

    def call_reporting(self, session_id, tool, arguments, report, *, end=False):
        self.used.append("call_reporting" + (" end" if end else ""))
        return ToolResult(tool=tool, content={}), SessionState(state_hash="h")

    def state_hash(self, session_id):
        self.used.append("state_hash")
        return "h"

    def diff(self, session_id):
        self.used.append("diff")
        return DatabaseDiff()


def test_a_server_that_reports_in_one_exchange_is_asked_once():
    """When a state is asked for, a reporting server's own call_reporting runs
    (one exchange); without one asked, a plain call runs."""
    server = _OneExchange()
    assert isinstance(server, StateReportingServer)
    _, state = call_reporting(server, "s", "t", {}, ["state_hash"])
    assert state.state_hash == "h"
    call_reporting(server, "s", "t", {}, [])
    assert server.used == ["call_reporting", "call"]

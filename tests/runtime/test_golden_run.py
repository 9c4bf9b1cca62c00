"""A golden trajectory runs over MCP in its own session and passes only if
every call binds, succeeds, and every write changes the state; the state comes
back with the calls' results, so a run reads no state resource of its own."""

from __future__ import annotations

import anyio
from mcp import Client

from schemas.golden import PlannedCall
from tasks.runtime.golden_run import run_each, run_golden
from tasks.runtime.mcp_exposure import STATE_HASH_URI, build_mcp_server
from tests.runtime import ANA, BRIGHT_SMILES, FUTURE
from tests.runtime.test_overlay import NEW_VISIT, OVERLAY

PATIENT = {"Patient": {"patient_id": ANA}, "Clinic": {"clinic_id": BRIGHT_SMILES}}
WRITES = {"book_appointment", "cancel_appointment"}


def entity(instance: str, field: str) -> dict:
    return {"source": "entity", "instance": instance, "field": field}


def literal(value: object) -> dict:
    return {"source": "literal", "value": value}


def plan(*calls: tuple[str, dict]) -> list[PlannedCall]:
    return [PlannedCall.model_validate({"tool": t, "arguments": a}) for t, a in calls]


AUTHORIZE = ("authorize_patient", {"patient_id": entity("Patient", "patient_id")})
BOOK = (
    "book_appointment",
    {
        "clinic_id": entity("Clinic", "clinic_id"),
        "scheduled_at": literal(FUTURE),
        "confirm": literal(True),
    },
)


def run(environment, calls, sessions=("golden-1",)):
    server = build_mcp_server(environment)

    async def state_hash(session: str) -> str:
        return environment.state_hash(session)

    async def main():
        async with Client(server, raise_exceptions=True) as client:
            outcomes = [
                await run_golden(
                    client,
                    calls,
                    PATIENT,
                    session=session,
                    write_tools=WRITES,
                    state_hash=state_hash,
                )
                for session in sessions
            ]
            return [golden for golden, _ in outcomes]

    return anyio.run(main)


def test_a_passing_run_records_concrete_calls_and_its_final_state(environment):
    """Book through the earlier result's id, then cancel it: both writes change
    the state; the run records the calls with concrete arguments, the final
    hash equals the session's, and another session is untouched."""
    cancel = (
        "cancel_appointment",
        {
            "appointment_id": {
                "source": "step_result",
                "step": 1,
                "path": ["appointment", "appointment_id"],
            },
        },
    )
    first, second = run(
        environment, plan(AUTHORIZE, BOOK, cancel), sessions=("g-1", "g-2")
    )
    assert first.passed and second.passed, (first.message, second.message)
    assert [c.tool for c in first.calls] == [
        "authorize_patient",
        "book_appointment",
        "cancel_appointment",
    ]
    booked_id = first.steps[1].result["appointment"]["appointment_id"]
    assert first.calls[2].arguments["appointment_id"] == booked_id
    # authorizing binds the session, it is not data: only the two writes count
    assert [s.wrote for s in first.steps] == [False, True, True]
    assert first.final_state_hash == environment.state_hash("g-1")
    # the same trajectory in a fresh session ends in the same state
    assert second.final_state_hash == first.final_state_hash
    assert first.final_state_hash != environment.state_hash("untouched")


def test_a_preview_instead_of_a_write_fails_the_run(environment):
    """Without confirm=true the booking is only previewed: the call succeeds but
    writes nothing, which the original counted as a pass."""
    unconfirmed = (BOOK[0], {k: v for k, v in BOOK[1].items() if k != "confirm"})
    (result,) = run(environment, plan(AUTHORIZE, unconfirmed))
    assert not result.passed
    assert result.failure == "no_write"
    assert "book_appointment" in result.message


def test_a_tool_error_or_an_unbindable_argument_stops_the_run(environment):
    """An error result ends the run with its message; so does a binding that
    points at a field an earlier result does not have, before any call."""
    (errored,) = run(environment, plan(BOOK))  # not authorized first
    assert errored.failure == "tool_error"
    assert errored.steps[-1].error
    bad = (
        "cancel_appointment",
        {
            "appointment_id": {
                "source": "step_result",
                "step": 0,
                "path": ["no_such_field"],
            }
        },
    )
    (unbound,) = run(environment, plan(AUTHORIZE, bad))
    assert unbound.failure == "binding"
    assert unbound.steps[-1].problems[0].kind == "missing_in_result"
    assert len(unbound.calls) == 1


class CountingClient:
    """An MCP client that counts the state resources read through it."""

    def __init__(self, client):
        self._client = client
        self.reads: list[str] = []

    async def read_resource(self, uri, **kwargs):
        self.reads.append(str(uri))
        return await self._client.read_resource(uri, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def _each(environment, plans, *, started=()):
    """run_each over the fixture server: the outcomes and the resources read."""

    async def main():
        async with Client(build_mcp_server(environment), raise_exceptions=True) as c:
            counting = CountingClient(c)
            outcomes = await run_each(counting, plans, started=started)
            return outcomes, counting.reads

    return anyio.run(main)


def test_the_state_comes_back_with_the_calls_so_runs_read_it_once(environment):
    """Three new sessions read the starting hash once between them and never the
    diff: each write's result brings its hash and the last call the diff, and
    both equal what the session's resources hold."""
    calls = plan(AUTHORIZE, BOOK)
    sessions = ("g-1", "g-2", "g-3")
    outcomes, reads = _each(environment, [(s, calls, PATIENT) for s in sessions])
    assert reads == [STATE_HASH_URI]
    for session, (golden, diff) in zip(sessions, outcomes, strict=True):
        assert golden.passed, golden.message
        assert [s.wrote for s in golden.steps] == [False, True]
        assert golden.final_state_hash == environment.state_hash(session)
        assert diff == environment.diff(session)
        assert diff.tables["Appointment"].inserted


def test_a_session_started_from_an_overlay_reads_its_own_starting_hash(
    environment,
):
    """An overlaid session does not start where new sessions do, so run_each
    reads its hash from it; a write there is still seen as a write, and its
    diff lists the overlay rows beside the booking."""
    environment.start_session("g-overlay", OVERLAY)
    calls = plan(AUTHORIZE, BOOK)
    plans = [("g-new", calls, PATIENT), ("g-overlay", calls, PATIENT)]
    outcomes, reads = _each(environment, plans, started=["g-overlay"])
    assert reads == [STATE_HASH_URI, STATE_HASH_URI]
    (fresh, _), (overlaid, diff) = outcomes
    assert fresh.passed and overlaid.passed, (fresh.message, overlaid.message)
    assert overlaid.final_state_hash == environment.state_hash("g-overlay")
    assert NEW_VISIT in diff.tables["Appointment"].inserted
    assert len(diff.tables["Appointment"].inserted) == 2

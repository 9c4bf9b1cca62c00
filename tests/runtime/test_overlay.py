"""Session overlays: a session starts from the base data plus a combination's
rows, only that session sees them, hashes and diffs stay against the untouched
base, and an overlay that does not fit the tables is refused with typed issues
naming table and row -- in process, in the sandboxed worker, and for
`python -m tasks.runtime.serve --overlay FILE`."""

from __future__ import annotations

import json
import shutil
import sys

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tasks.runtime.golden_run import mcp_state_hash, session_diff, session_meta
from tasks.runtime.overlay import OverlayError
from tasks.runtime.serve import load_environment, main, open_environment
from tests.runtime import (
    ANA,
    FIXTURE_DIR,
    REPO,
    SERVER,
    SIMULATION_TIME,
    serve_arguments,
)

NEW_CLINIC = "0c0c0c0c-1111-4222-8333-444444444444"
NEW_VISIT = "0d0d0d0d-1111-4222-8333-555555555555"
CLINIC = {
    "clinic_id": NEW_CLINIC,
    "name": "Overlay Dental",
    "city": "Faro",
    "accepts_new_patients": True,
}
VISIT = {
    "appointment_id": NEW_VISIT,
    "patient_id": ANA,
    "clinic_id": NEW_CLINIC,
    "scheduled_at": "2025-02-20T10:00:00-05:00",
    "status": "booked",
    "created_at": "2025-01-20T10:00:00-05:00",
}
OVERLAY = {"Clinic": [CLINIC], "Appointment": [VISIT]}


def _faro(environment, session):
    environment.call(session, "authorize_patient", {"patient_id": ANA})
    found = environment.call(session, "list_clinics", {"city": "Faro"})
    return [c["clinic_id"] for c in found.content["clinics"]]


def test_overlay_rows_are_seen_only_by_their_session(environment):
    """The overlaid clinic and visit exist in session "combo" only; another
    session and the base do not see them; the diff against the base lists them
    as inserted, and cancelling the overlaid visit is a further write."""
    base_hash = environment.base.state_hash()
    environment.start_session("combo", OVERLAY)
    assert _faro(environment, "combo") == [NEW_CLINIC]
    assert _faro(environment, "other") == []
    assert environment.base.state_hash() == base_hash
    assert environment.state_hash("combo") != base_hash
    diff = environment.diff("combo").tables
    assert diff["Clinic"].inserted == (NEW_CLINIC,)
    assert diff["Appointment"].inserted == (NEW_VISIT,)
    cancelled = environment.call(
        "combo", "cancel_appointment", {"appointment_id": NEW_VISIT}
    )
    assert not cancelled.is_error
    assert environment.diff("combo").tables["Appointment"].inserted == (NEW_VISIT,)
    assert environment.diff("other").empty


def test_an_overlay_that_does_not_fit_is_refused_with_every_issue(environment):
    """Unknown table, a key the base already uses, an unknown column and a
    foreign key resolving nowhere: one typed error naming each table and row,
    and no session is created."""
    taken = environment.base.table("Clinic").all()[0]
    bad = {
        "Room": [{"room_id": "r1"}],
        "Clinic": [taken],
        "Appointment": [{**VISIT, "clinic_id": "nowhere", "colour": "red"}],
    }
    with pytest.raises(OverlayError) as caught:
        environment.start_session("combo", bad)
    kinds = {(i.table, i.kind, i.row) for i in caught.value.issues}
    assert kinds == {
        ("Room", "unknown_table", None),
        ("Clinic", "duplicate_primary_key", taken["clinic_id"]),
        ("Appointment", "unknown_column", NEW_VISIT),
        ("Appointment", "dangling_foreign_key", NEW_VISIT),
    }
    assert f"overlay Appointment row '{NEW_VISIT}'" in str(caught.value)
    assert "combo" not in environment.session_ids


def test_a_session_cannot_be_started_twice(environment):
    environment.start_session("combo", OVERLAY)
    with pytest.raises(ValueError, match="already started"):
        environment.start_session("combo", OVERLAY)


def test_an_environment_overlay_starts_every_session(tmp_path):
    """`load_environment(overlay=...)`: every new session (and a private one)
    starts with the rows; the diff of an untouched session shows them."""
    environment = load_environment(
        FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME, overlay=OVERLAY
    )
    assert _faro(environment, "a") == [NEW_CLINIC]
    assert environment.call(None, "list_clinics", {"city": "Faro"}).is_error
    assert environment.diff("b").tables["Clinic"].inserted == (NEW_CLINIC,)
    assert environment.diff(None) == environment.diff("b")
    assert environment.state_hash(None) == environment.state_hash("b")


def test_the_sandboxed_worker_starts_sessions_from_overlays():
    """The same through the sandboxed worker: the row is seen only in its
    session, a refused overlay raises the typed error with the worker's
    issues, and a worker restart restores the overlaid session."""
    with open_environment(
        FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME
    ) as served:
        served.start_session("combo", OVERLAY)
        assert _faro(served, "combo") == [NEW_CLINIC]
        assert _faro(served, "other") == []
        before = served.state_hash("combo")
        with pytest.raises(OverlayError) as caught:
            served.start_session("bad", {"Appointment": [{**VISIT, "clinic_id": 7}]})
        [issue] = caught.value.issues
        assert (issue.kind, issue.row) == ("dangling_foreign_key", NEW_VISIT)
        served._stop()  # the worker dies; the next request restarts it
        assert served.state_hash("combo") == before
        assert served.restarts == 1


def test_serve_with_an_overlay_file_serves_it_to_every_session(tmp_path):
    """`python -m tasks.runtime.serve --overlay FILE` over stdio: a client's
    session sees the rows and its diff resource lists them as inserted."""
    path = tmp_path / "overlay.json"
    path.write_text(json.dumps(OVERLAY))
    server = StdioServerParameters(
        command=sys.executable,
        args=serve_arguments("stdio", "--overlay", str(path)),
        cwd=str(REPO),
    )

    async def scenario():
        with anyio.fail_after(90):
            async with Client(server) as client:
                meta = session_meta("s")
                await client.call_tool(
                    "authorize_patient", {"patient_id": ANA}, meta=meta
                )
                found = await client.call_tool(
                    "list_clinics", {"city": "Faro"}, meta=meta
                )
                diff = await session_diff(client, "s")
                return found, diff, await mcp_state_hash(client)("s")

    found, diff, state = anyio.run(scenario)
    assert NEW_CLINIC in "".join(part.text for part in found.content)
    assert diff.tables["Appointment"].inserted == (NEW_VISIT,)
    local = load_environment(
        FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME, overlay=OVERLAY
    )
    assert state == local.state_hash("s")


def test_serve_refuses_an_overlay_that_does_not_fit(tmp_path, capsys):
    path = tmp_path / "overlay.json"
    path.write_text(json.dumps({"Clinic": [{"clinic_id": NEW_CLINIC}]}))
    status = main(serve_arguments("stdio", "--overlay", str(path))[2:])
    assert status == 2
    err = capsys.readouterr().err
    assert "overlay Clinic row #0 ('0c0c0c0c" in err
    assert "lacks column 'name'" in err


FUSED_CARDS = "AccountServicing_CardServices"
DARA = "d33c2eaf-9cf1-44e2-bd4d-6f7578294f97"
"""A verified account holder of the demo world."""
NEW_ACCOUNT = "0a0a0a0a-1111-4222-8333-666666666666"
NEW_CARD = "0b0b0b0b-1111-4222-8333-777777777777"


def _cross_domain_overlay(output) -> dict:
    accounts = json.loads(
        (output / "database/outputs/entities/BankAccount.json").read_text()
    )
    return {
        "AccountServicing.BankAccount": [
            {
                "bank_account_id": NEW_ACCOUNT,
                "account_type": "savings",
                "balance": 1200.0,
                "currency": "USD",
                "status": "open",
            }
        ],
        "AccountServicing.AccountOwnership": [
            {
                "account_ownership_id": "0e0e0e0e-1111-4222-8333-888888888888",
                "account_holder_id": DARA,
                "bank_account_id": NEW_ACCOUNT,
                "opened_on": "2024-11-02",
                "role": "primary",
            }
        ],
        "CardServices.Card": [
            {
                "card_id": NEW_CARD,
                "card_type": "debit",
                "credit_limit": 0.0,
                "network": "visa",
                "status": "active",
            }
        ],
        "CardServices.CardLink": [
            {
                "card_link_id": "0f0f0f0f-1111-4222-8333-999999999999",
                "account_holder_id": DARA,
                "bank_account_id": accounts[0]["bank_account_id"],
                "card_id": NEW_CARD,
                "linked_on": "2024-11-02",
            }
        ],
    }


@pytest.mark.slow
def test_a_fused_golden_run_with_an_overlay_passes_and_check_task_replays_it(
    demo_output, tmp_path, capsys
):
    """A cross-domain combination whose records exist only in its overlay: s16
    runs it over MCP in a session started from base + overlay (freeze the new
    account, block the new card); the expected diff lists the overlay rows as
    inserted plus the two writes; check-task serves the environment with the
    task's overlay and gets the same final state. Without the overlay the
    same trajectory fails, and a combination with a broken overlay is
    filtered as "overlay"."""
    from flows.cli import main as cli
    from schemas.artifact import RunStamp
    from schemas.config import TaskFilterConfig
    from schemas.golden import PlannedCall
    from schemas.validated_task import InstanceCombination
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout, queries_relpath
    from tasks.task_filtering import agent_task, execute
    from tests.dental_policy import artifact
    from tests.tasks.test_check_task import _query

    overlay = _cross_domain_overlay(demo_output)

    def entity(instance, field):
        return {"source": "entity", "instance": instance, "field": field}

    calls = [
        (
            "AccountServicing__authorize_account_holder",
            {"account_holder_id": entity("AccountHolder", "account_holder_id")},
        ),
        (
            "AccountServicing__freeze_account",
            {
                "bank_account_id": entity("BankAccount", "bank_account_id"),
                "confirm": {"source": "literal", "value": True},
            },
        ),
        (
            "CardServices__block_card",
            {
                "card_id": entity("Card", "card_id"),
                "reason": {"source": "literal", "value": "lost"},
                "confirm": {"source": "literal", "value": True},
            },
        ),
    ]

    def combo(combo_id, rows):
        return InstanceCombination(
            combo_id=combo_id,
            environment=FUSED_CARDS,
            scope="cross_domain",
            template_id="t",
            trajectory=tuple(name for name, _ in calls),
            trajectory_hash="h",
            instruction="Freeze <BankAccount> and block <Card>",
            reason_for_call="a lost wallet",
            instances={
                "AccountHolder": {"account_holder_id": DARA},
                "BankAccount": overlay["AccountServicing.BankAccount"][0],
                "Card": overlay["CardServices.Card"][0],
            },
            calls=tuple(
                PlannedCall.model_validate({"tool": t, "arguments": a})
                for t, a in calls
            ),
            overlay=rows,
        )

    broken = {"CardServices.Card": [{"card_id": NEW_CARD, "status": "active"}]}
    combos = [combo("with", overlay), combo("without", {}), combo("broken", broken)]
    out = tmp_path / "out"
    shutil.copytree(demo_output, out)
    (passed, diff), (bare, _), (refused, _) = execute(
        out,
        FUSED_CARDS,
        [artifact("instance_combination", c.combo_id, c) for c in combos],
        TaskFilterConfig(),
        SIMULATION_TIME,
        7,
    )
    assert passed.passed, passed.message
    assert bare.failure == "tool_error"
    assert refused.failure == "overlay" and "lacks column 'network'" in refused.message
    inserted = {name: table.inserted for name, table in diff.tables.items()}
    assert inserted["CardServices.Card"] == (NEW_CARD,)
    assert inserted["AccountServicing.BankAccount"] == (NEW_ACCOUNT,)
    assert set(inserted) == set(overlay)
    assert all(not table.updated for table in diff.tables.values())

    task = agent_task(combos[0], passed, diff, SIMULATION_TIME, 7)
    store = ArtifactStore(OutputLayout(out))
    made = artifact("agent_task", "q-cross", task)
    store.put(made, RunStamp())
    path = out / queries_relpath(FUSED_CARDS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_query(made, "q-cross").model_dump_json() + "\n")
    capsys.readouterr()
    assert cli(["check-task", "q-cross", "--output-dir", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: q-cross on {FUSED_CARDS}")

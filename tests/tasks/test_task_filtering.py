"""s16: combinations run for real in the sandboxed environment over MCP; only
those whose every call succeeds and whose writes happen become agent tasks.

The environment is the hand-written DentalAppointments fixture, materialised
from artifacts (as the step does) and served by a sandboxed worker.
"""

from __future__ import annotations

import json
from pathlib import Path

from schemas.config import TaskFilterConfig
from schemas.database import DataTable
from schemas.golden import PlannedCall
from schemas.server import McpServer
from schemas.validated_task import InstanceCombination
from tasks.environment_build import materialize_environment
from tasks.runtime.exports import (
    blueprint_from_export,
    catalogue_from_export,
    find_blueprint,
)
from tasks.runtime.serve import open_environment
from tasks.task_filtering import agent_task, execute, result, run_combinations
from tests.dental_policy import artifact
from tests.runtime import (
    ANA,
    BRIGHT_SMILES,
    FIXTURE_DIR,
    FUTURE,
    SERVER,
    SIMULATION_TIME,
)

SEED = 7


def _artifacts():
    """The fixture server as the artifacts s16 receives."""
    catalogue = catalogue_from_export(
        json.loads((FIXTURE_DIR / "entities.json").read_text())
    )
    exported = find_blueprint(
        json.loads((FIXTURE_DIR / "blueprints.json").read_text()), SERVER
    )
    blueprint = blueprint_from_export(exported, catalogue)
    tables = []
    data = FIXTURE_DIR / "database" / "outputs"
    for path in sorted(data.rglob("*.json")):
        kind = "entity" if path.parent.name == "entities" else "relationship"
        rows = json.loads(path.read_text())
        table = DataTable(
            table=path.stem,
            kind=kind,
            server=None if kind == "entity" else path.parent.name,
            primary_key=next(iter(rows[0])),
            rows=tuple(rows),
            script="",
            seed=SEED,
            attempts=1,
        )
        tables.append(artifact("data_table", path.stem, table))
    module = (FIXTURE_DIR / "mcp_servers" / f"{SERVER}.py").read_text()
    server = McpServer(server_name=SERVER, module_code=module, tests_code="", tools=())
    return {
        "blueprints": [artifact("blueprint", SERVER, blueprint)],
        "catalogue": artifact("entity_catalogue", "entities", catalogue),
        "tables": tables,
        "servers": [artifact("mcp_server", SERVER, server)],
    }


def _entity(instance: str, field: str) -> dict:
    return {"source": "entity", "instance": instance, "field": field}


def _combo(combo_id: str, *calls: tuple[str, dict]) -> InstanceCombination:
    return InstanceCombination(
        combo_id=combo_id,
        environment=SERVER,
        scope="single",
        template_id="t",
        trajectory=tuple(c[0] for c in calls),
        trajectory_hash="abc",
        instruction="Book <Clinic.name>",
        reason_for_call="a check-up",
        instances={
            "Patient": {"patient_id": ANA},
            "Clinic": {"clinic_id": BRIGHT_SMILES},
        },
        calls=tuple(
            PlannedCall.model_validate({"tool": t, "arguments": a}) for t, a in calls
        ),
    )


AUTHORIZE = ("authorize_patient", {"patient_id": _entity("Patient", "patient_id")})
BOOK = {
    "clinic_id": _entity("Clinic", "clinic_id"),
    "scheduled_at": {"source": "literal", "value": FUTURE},
}


def test_materialised_artifacts_serve_the_same_environment(tmp_path: Path):
    """What the step builds from its inputs equals the exported environment."""
    folder = materialize_environment(tmp_path, **_artifacts())
    with (
        open_environment(folder, SERVER, simulation_time=SIMULATION_TIME) as built,
        open_environment(FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME) as ref,
    ):
        assert built.spec == ref.spec
        assert built.state_hash("s") == ref.state_hash("s")


def _pass_preview_unbound() -> list:
    """A confirmed booking (passes), an unconfirmed one (only previews: filtered
    no_write after its last call) and a call on a field the instance does not
    have (filtered: binding, before any call)."""
    confirmed = {**BOOK, "confirm": {"source": "literal", "value": True}}
    return [
        _combo("ok", AUTHORIZE, ("book_appointment", confirmed)),
        _combo("preview", AUTHORIZE, ("book_appointment", BOOK)),
        _combo(
            "bad-field",
            ("authorize_patient", {"patient_id": _entity("Patient", "email")}),
        ),
    ]


def test_only_combinations_that_really_write_become_agent_tasks(tmp_path: Path):
    """A confirmed booking passes with its diff and final hash; the unconfirmed
    one only previews (filtered: no_write); a call on a field the instance does
    not have never reaches the server (filtered: binding)."""
    combos = _pass_preview_unbound()
    folder = materialize_environment(tmp_path, **_artifacts())
    runs = execute(
        folder,
        SERVER,
        [artifact("instance_combination", c.combo_id, c) for c in combos],
        TaskFilterConfig(),
        SIMULATION_TIME,
        SEED,
    )
    outcomes = [result(c, run) for c, (run, _) in zip(combos, runs, strict=True)]
    assert [(o.combo_id, o.passed, o.failure) for o in outcomes] == [
        ("ok", True, None),
        ("preview", False, "no_write"),
        ("bad-field", False, "binding"),
    ]
    assert outcomes[2].calls == 0
    run, diff = runs[0]
    task = agent_task(combos[0], run, diff, SIMULATION_TIME, SEED)
    assert [c.tool for c in task.golden_calls] == [
        "authorize_patient",
        "book_appointment",
    ]
    assert task.golden_calls[1].arguments["clinic_id"] == BRIGHT_SMILES
    assert list(task.expected_diff.tables) == ["Appointment"]
    assert len(task.expected_diff.tables["Appointment"].inserted) == 1
    assert len(task.expected_state_hash) == 64


def test_every_golden_session_ends_with_its_run(tmp_path: Path):
    """However a combination's run ends (passing, filtered after its last call,
    or stopped before any call), its session is over afterwards: the worker's
    journal is empty and each session reads as the starting state again."""
    combos = _pass_preview_unbound()
    folder = materialize_environment(tmp_path, **_artifacts())
    with open_environment(folder, SERVER, simulation_time=SIMULATION_TIME) as served:
        start = served.state_hash(None)
        runs = run_combinations(served, combos)
        assert [run.passed for run, _ in runs] == [True, False, False]
        assert served._journal == []
        for combo in combos:
            assert served.state_hash(f"golden-{combo.combo_id}") == start

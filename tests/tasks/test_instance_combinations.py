"""s15 instance combinations: the step task on replayed, in-test scripted
cassettes with real sandboxed selection scripts (kept combinations, a repaired
script, a plan re-asked, and each typed failure), and the rounds that retry only
failed templates under new item keys."""

from __future__ import annotations

from pathlib import Path

import yaml

from schemas.agent_task import TaskTemplate
from schemas.artifact import FailedItem, ItemOutcome
from schemas.database import DataTable
from schemas.instance_plan import InstancePlanDraft
from schemas.policy import PolicyDocument
from schemas.server import McpServer
from tasks import instance_combinations as s15
from tasks.core.instance_selection import TableRows
from tasks.core.policy import parse_policy
from tasks.step_run import StepRun
from tests.dental_combinations import (
    CRASHING_SCRIPT,
    EMPTY_SCRIPT,
    GOOD_SCRIPT,
    HANGING_SCRIPT,
    MISSING_ROW_SCRIPT,
    ROWS,
    TOOLS,
    TRAJECTORY,
    plan_data,
)
from tests.dental_policy import BLUEPRINT, POLICY, summaries
from tests.dental_policy import artifact as _artifact
from tests.dental_policy import edit_block as _edit
from tests.tasks.test_policy_generation import replay_context

SERVER = BLUEPRINT.server_name
HASH = "0a1b2c3d4e5f"
KEY = f"{SERVER}/{HASH}"
TEMPLATE = TaskTemplate(
    source=SERVER,
    trajectory=TRAJECTORY,
    trajectory_hash=HASH,
    instruction="I am <Patient.full_name>; cancel my booked visit.",
    reason_for_call="A schedule conflict.",
    placeholders=("Patient.full_name",),
)


def _tables(rows: dict = ROWS) -> tuple:
    return tuple(
        _artifact(
            "data_table",
            name,
            DataTable(
                table=name,
                kind="relationship" if name == "Appointment" else "entity",
                server=SERVER if name == "Appointment" else None,
                primary_key=t.primary_key,
                rows=t.rows,
                script="",
                seed=0,
                attempts=1,
            ),
        )
        for name, t in rows.items()
    )


def _context(tmp_path: Path, calls: dict, **overrides) -> StepRun:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return replay_context(tmp_path, calls, step_id="s15", **overrides)


def _select(step: StepRun, rows: dict = ROWS) -> ItemOutcome:
    cfg = step.config.steps.s15_instance_combinations
    work = step.item(
        KEY,
        s15.select_instance_combinations,
        inputs=_inputs(rows),
        params={"settings": _settings(step), "round_number": 1},
        llm=step.llm(cfg),
        models={s15.PLAN_MODEL: step.llm(s15.plan_model(cfg))},
        prompts=s15.PROMPTS,
    )
    return s15.select_instance_combinations(
        work, s15.ItemEnv(step.res, work), **_arguments(step, rows)
    )


def _settings(step: StepRun) -> s15.SelectionSettings:
    return s15.SelectionSettings(
        cfg=step.config.steps.s15_instance_combinations,
        seed=step.config.run.seed,
        simulation_time=step.config.run.simulation_time,
    )


def _inputs(rows: dict = ROWS) -> dict:
    policy = PolicyDocument(
        server_name=SERVER, markdown=POLICY, parsed=parse_policy(POLICY)
    )
    return {
        "template": _artifact("task_template", KEY, TEMPLATE),
        "server": _artifact(
            "mcp_server",
            SERVER,
            McpServer(server_name=SERVER, module_code="", tests_code="", tools=TOOLS),
        ),
        "blueprint": _artifact("blueprint", SERVER, BLUEPRINT),
        "tables": _tables(rows),
        "summaries": tuple(_artifact("table_summary", s.table, s) for s in summaries()),
        "policy": _artifact("policy", SERVER, policy),
    }


def _arguments(step: StepRun, rows: dict) -> dict:
    return {**_inputs(rows), "settings": _settings(step), "round_number": 1}


def _failure(outcome: ItemOutcome) -> FailedItem:
    assert outcome.failure is not None and not outcome.artifacts
    return outcome.failure


def _calls(step: StepRun) -> list[tuple[str, int]]:
    return [(r.call_key, r.attempt) for r in step.res.ledger.records()]


def test_plan_then_selection_keeps_seeded_samples_with_declarative_calls(tmp_path):
    """Three valid combinations, two samples kept; the selection record first."""
    step = _context(
        tmp_path,
        {
            f"s15/{KEY}/plan": [plan_data()],
            f"s15/{KEY}": [{"script": GOOD_SCRIPT}],
        },
        **{"steps.s15_instance_combinations.samples_per_template": 2},
    )
    outcome = _select(step)
    assert outcome.ok
    selection, *combos = outcome.artifacts
    assert selection.kind == "instance_selection" and selection.id == KEY
    assert (selection.payload.found, selection.payload.runs) == (2, 1)
    assert selection.payload.script == GOOD_SCRIPT
    assert [c.kind for c in combos] == ["instance_combination"] * 2
    visits = [c.payload.instances["Appointment"]["appointment_id"] for c in combos]
    assert visits == ["a1", "a4"]
    for index, combo in enumerate(combos):
        payload = combo.payload
        assert combo.id == payload.combo_id and len(payload.combo_id) == 64
        assert payload.sample_index == index and payload.scope == "single"
        assert payload.trajectory == TRAJECTORY and payload.overlay == {}
        assert [c.tool for c in payload.calls] == list(TRAJECTORY)
        assert selection.ref in combo.parents
    assert _calls(step) == [(f"s15/{KEY}/plan", 0), (f"s15/{KEY}", 0)]


def test_same_seed_and_cassette_give_the_same_combinations(tmp_path):
    """Determinism: two runs, identical artifact hashes."""
    calls = {f"s15/{KEY}/plan": [plan_data()], f"s15/{KEY}": [{"script": GOOD_SCRIPT}]}
    first = _select(_context(tmp_path / "a", calls))
    second = _select(_context(tmp_path / "b", calls))
    assert [a.content_hash for a in first.artifacts] == [
        a.content_hash for a in second.artifacts
    ]


def test_a_plan_with_an_unknown_field_is_reasked_with_the_problem(tmp_path):
    """Attempt 0 names a column Patient lacks; attempt 1 validates."""
    wrong = plan_data()
    wrong["steps"][0]["arguments"][0]["field"] = "patient_number"
    step = _context(
        tmp_path,
        {
            f"s15/{KEY}/plan": [wrong, plan_data()],
            f"s15/{KEY}": [{"script": GOOD_SCRIPT}],
        },
    )
    assert _select(step).ok
    assert _calls(step)[:2] == [(f"s15/{KEY}/plan", 0), (f"s15/{KEY}/plan", 1)]


def test_a_plan_that_never_validates_is_a_plan_invalid_failure(tmp_path):
    """Every attempt binds a parameter the tool lacks: typed plan_invalid."""
    wrong = plan_data()
    wrong["steps"][2]["arguments"][0]["parameter"] = "visit_id"
    step = _context(tmp_path, {f"s15/{KEY}/plan": [wrong] * 3})
    failure = _failure(_select(step))
    assert failure.details[0] == "plan_invalid"
    assert failure.reason == "invalid_output"
    assert not failure.blocking


def test_a_crashing_script_is_repaired_by_an_edit_block(tmp_path):
    """Run 1 raises KeyError; the fix sees the traceback; run 2 finds combinations."""
    fix = _edit(
        '    for visit in tables["Appointments"]:',
        '    for visit in tables["Appointment"]:',
    )
    step = _context(
        tmp_path,
        {
            f"s15/{KEY}/plan": [plan_data()],
            f"s15/{KEY}": [{"script": CRASHING_SCRIPT}],
            f"s15/{KEY}/fix-1": [{"edits": fix}],
        },
    )
    outcome = _select(step)
    assert outcome.ok
    selection = outcome.artifacts[0].payload
    assert selection.runs == 2 and selection.script == GOOD_SCRIPT
    assert _calls(step) == [
        (f"s15/{KEY}/plan", 0),
        (f"s15/{KEY}", 0),
        (f"s15/{KEY}/fix-1", 0),
    ]


def test_a_script_that_finds_nothing_is_a_no_combination_failure(tmp_path):
    """The repair budget is spent on an empty output: typed no_combination."""
    step = _context(
        tmp_path,
        {
            f"s15/{KEY}/plan": [plan_data()],
            f"s15/{KEY}": [{"script": EMPTY_SCRIPT}],
        },
        **{"steps.s15_instance_combinations.max_code_retries": 0},
    )
    failure = _failure(_select(step))
    assert failure.details[0] == "no_combination"
    assert failure.message.startswith("no_combination: no usable combination after 1")
    assert failure.reason == "validation_failed"


def test_a_hanging_script_is_a_timeout_failure(tmp_path):
    """The sandbox kills it at the tiny time limit: typed timeout, no crash."""
    step = _context(
        tmp_path,
        {
            f"s15/{KEY}/plan": [plan_data()],
            f"s15/{KEY}": [{"script": HANGING_SCRIPT}],
        },
        **{
            "steps.s15_instance_combinations.max_code_retries": 0,
            "steps.s15_instance_combinations.code_timeout_s": 0.5,
        },
    )
    failure = _failure(_select(step))
    assert failure.details[0] == "timeout"


def test_combinations_naming_a_missing_row_are_a_bad_reference_failure(tmp_path):
    """Every combination names appointment zz9: typed bad_reference, with why."""
    step = _context(
        tmp_path,
        {
            f"s15/{KEY}/plan": [plan_data()],
            f"s15/{KEY}": [{"script": MISSING_ROW_SCRIPT}],
        },
        **{"steps.s15_instance_combinations.max_code_retries": 0},
    )
    failure = _failure(_select(step))
    assert failure.details[0] == "bad_reference"
    assert (
        "combination 0: instance 'Appointment': no row with appointment_id = 'zz9'"
        in failure.details
    )


def test_a_combination_naming_a_missing_row_is_filtered_out_and_counted(tmp_path):
    """The script's fabricated extra combination is dropped; the rest are kept."""
    extra = GOOD_SCRIPT.replace(
        'json.dump({"combinations": combos}',
        'combos.append({"instances": {"Patient": {"patient_id": "p1"}, '
        '"Appointment": {"appointment_id": "zz9"}}, "values": {"1.status": "booked"}})'
        '\njson.dump({"combinations": combos}',
    )
    step = _context(
        tmp_path,
        {f"s15/{KEY}/plan": [plan_data()], f"s15/{KEY}": [{"script": extra}]},
    )
    selection = _select(step).artifacts[0].payload
    assert (selection.found, selection.rejected) == (2, 1)


def test_a_field_the_selected_rows_lack_is_a_bad_reference_failure(tmp_path):
    """Only a suspended patient has an email; the active ones chosen lack it."""
    data = plan_data()
    data["steps"][0]["arguments"][0]["field"] = "email"
    rows = dict(ROWS)
    rows["Patient"] = TableRows(
        "patient_id",
        tuple(
            r
            if r["status"] == "suspended"
            else {k: v for k, v in r.items() if k != "email"}
            for r in ROWS["Patient"].rows
        ),
    )
    step = _context(
        tmp_path,
        {f"s15/{KEY}/plan": [data], f"s15/{KEY}": [{"script": GOOD_SCRIPT}]},
        **{"steps.s15_instance_combinations.max_code_retries": 0},
    )
    failure = _failure(_select(step, rows))
    assert failure.details[0] == "bad_reference"
    assert (
        "combination 0: authorize_patient.patient_id: instance 'Patient' has no "
        "field 'email'" in failure.details
    )


def test_the_demo_cassette_is_labelled_and_its_answers_parse():
    """configs/demo/cassette/s15.yaml is marked scripted; plans validate as
    drafts, scripts pass the static checks, edits are SEARCH/REPLACE blocks."""
    from tasks.core.data_scripts import script_problems
    from tests.conftest import REPO

    path = REPO / "configs" / "demo" / "cassette" / "s15.yaml"
    assert path.read_text().startswith("# SCRIPTED CASSETTE")
    document = yaml.safe_load(path.read_text())
    assert document["scripted"] is True
    kinds = {"plan": 0, "script": 0, "fix": 0}
    for key, answers in document["calls"].items():
        assert key.startswith("s15/")
        for answer in answers:
            if key.endswith("/plan"):
                InstancePlanDraft.model_validate(answer)
                kinds["plan"] += 1
            elif "/fix-" in key:
                assert "<<<<<<< SEARCH" in answer["edits"]
                kinds["fix"] += 1
            else:
                assert script_problems(answer["script"]) == []
                kinds["script"] += 1
    assert kinds == {"plan": 8, "script": 8, "fix": 3}

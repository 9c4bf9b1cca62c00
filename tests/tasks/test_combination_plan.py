"""s15 rounds and exports: later rounds re-run only failed templates under new
item keys and stop by the convergence rule (items run by a scripted stand-in for
the fan-out), and the reference files and skipped list built from the rounds."""

from __future__ import annotations

import pytest

from schemas.artifact import FailedItem, ItemOutcome
from tasks import combination_plan as rounds_module
from tasks import instance_combinations as s15
from tasks.items import dependency_failed
from tests.dental_combinations import GOOD_SCRIPT, TRAJECTORY, plan_data
from tests.dental_policy import artifact as _artifact
from tests.tasks.test_instance_combinations import (
    HASH,
    KEY,
    SERVER,
    TEMPLATE,
    _context,
    _inputs,
    _select,
)


def _rest() -> dict:
    inputs = _inputs()
    del inputs["template"]
    return inputs


def test_later_rounds_have_their_own_item_keys_and_cache_keys(tmp_path):
    """Round 2 of a template is a new item: new call keys, new cache key."""
    assert s15.item_key(SERVER, HASH, 1) == KEY
    assert s15.item_key(SERVER, HASH, 2) == f"{KEY}/round-2"
    step = _context(tmp_path, {})
    cfg = step.config.steps.s15_instance_combinations
    src = rounds_module.TemplateInputs(_inputs()["template"], _rest())
    one = rounds_module.combination_item(step, cfg, src, 1)
    two = rounds_module.combination_item(step, cfg, src, 2)
    assert one.item_key == KEY and two.item_key == f"{KEY}/round-2"
    assert one.params_hash != two.params_hash


@pytest.fixture
def scripted_rounds(monkeypatch):
    """Items fail or succeed by a script of (template, round) -> ok."""
    ran: list[list[str]] = []

    def fake_run_items(run, works, tally, *, exports=None):
        ran.append([w.item_key for w in works])
        outcomes = []
        for work in works:
            ok = work.item_key in fake_run_items.succeed
            failure = None
            if not ok:
                failure = FailedItem(
                    step="s15",
                    item_key=work.item_key,
                    reason="validation_failed",
                    message="no_combination: none",
                    details=("no_combination",),
                )
                tally.failures.append(failure)
            else:
                tally.ok += 1
            outcomes.append(ItemOutcome(item_key=work.item_key, failure=failure))
        return outcomes

    fake_run_items.succeed = set()
    monkeypatch.setattr(rounds_module, "run_items", fake_run_items)
    return fake_run_items, ran


def _sources(n: int) -> list:
    rest = _rest()
    return [
        rounds_module.TemplateInputs(
            _artifact(
                "task_template",
                f"t{i}",
                TEMPLATE.model_copy(update={"trajectory_hash": f"h{i}"}),
            ),
            rest,
        )
        for i in range(n)
    ]


def test_rounds_retry_only_failed_templates_until_progress_stalls(
    tmp_path, scripted_rounds
):
    """5 fail, then 3 (40 % progress: go on), then 3 (stall: stop); the tally
    holds only the last failures."""
    fake, ran = scripted_rounds
    fake.succeed = {f"{SERVER}/h0", f"{SERVER}/h1/round-2", f"{SERVER}/h2/round-2"}
    step = _context(tmp_path, {}, **{"steps.s15_instance_combinations.max_rounds": 5})
    cfg = step.config.steps.s15_instance_combinations
    done = rounds_module.run_rounds(step, cfg, _sources(6))
    assert ran == [
        [f"{SERVER}/h{i}" for i in range(6)],
        [f"{SERVER}/h{i}/round-2" for i in range(1, 6)],
        [f"{SERVER}/h{i}/round-3" for i in range(3, 6)],
    ]
    assert done.failed_per_round == [5, 3, 3]
    assert len(done.succeeded) == 3
    assert [f.item_key for f in step.tally.failures] == [
        f"{SERVER}/h{i}/round-3" for i in range(3, 6)
    ]
    assert step.tally.ok == 3


def test_rounds_stop_at_max_rounds(tmp_path, scripted_rounds):
    """With max_rounds 1 a failure is final after the first round."""
    fake, ran = scripted_rounds
    step = _context(tmp_path, {}, **{"steps.s15_instance_combinations.max_rounds": 1})
    cfg = step.config.steps.s15_instance_combinations
    done = rounds_module.run_rounds(step, cfg, _sources(2))
    assert len(ran) == 1 and done.failed_per_round == [2]
    assert step.tally.failed == 2


def test_exports_are_the_reference_files_and_list_every_skipped_template(tmp_path):
    """combinations/<S>/<h>.json, sampling_codes/<S>/<h>.py, and one skipped
    entry per failed or input-less template with its typed kind."""
    step = _context(
        tmp_path,
        {f"s15/{KEY}/plan": [plan_data()], f"s15/{KEY}": [{"script": GOOD_SCRIPT}]},
    )
    outcome = _select(step)
    [kept, failed, unready] = _sources(3)
    lost = FailedItem(
        step="s15",
        item_key="x",
        reason="validation_failed",
        message="timeout: too slow",
        details=("timeout",),
    )
    rounds = rounds_module.Rounds(succeeded=[(kept, outcome)], failed=[(failed, lost)])
    missing = dependency_failed("s15", "y", "no policy")
    exports = rounds_module.template_exports(rounds)
    assert sorted(exports) == [
        f"combinations/{SERVER}/{HASH}.json",
        f"sampling_codes/{SERVER}/{HASH}.py",
    ]
    data = exports[f"combinations/{SERVER}/{HASH}.json"][1]
    assert data["trajectory"] == list(TRAJECTORY)
    assert data["task_template"]["instruction"] == TEMPLATE.instruction
    assert [c["sample_idx"] for c in data["combos"]] == [0, 1]
    first = data["combos"][0]
    assert first["value_domain_samples"] == {"list_my_appointments.status": "booked"}
    assert first["entity_instances"]["Patient"]["patient_id"] == "p1"
    assert first["constraint_analysis"]["steps"][0]["tool"] == "authorize_patient"
    assert data["metadata"]["server_name"] == SERVER
    assert exports[f"sampling_codes/{SERVER}/{HASH}.py"][1] == GOOD_SCRIPT
    skipped = rounds_module.skipped_trajectories(rounds, [(unready.template, missing)])
    assert [(e["trajectory_hash"], e["kind"]) for e in skipped[SERVER]] == [
        ("h1", "timeout"),
        ("h2", "dependency_failed"),
    ]

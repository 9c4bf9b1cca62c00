"""The one work-item task: it runs any planned item from its work item alone,
and refuses items that do not fit their function or this process's code."""

from __future__ import annotations

import pytest

from schemas.artifact import Artifact, Producer, RunStamp
from schemas.blueprint import ServerBlueprint
from tasks import tool_list_formulation as s05
from tasks.core.tool_lists import tool_list
from tasks.items import work_item
from tasks.machinery import MachineryError
from tasks.runner import execute
from tasks.store.config_loader import load_config
from tasks.task_args import PlanError, task_function
from tests.conftest import DEMO_CONFIG
from tests.dental_policy import BLUEPRINT
from tests.tasks.step_calls import local_step

MADE = Producer(step="s04", item_key="x", params_hash="0", code_version="0")


def _stored_blueprint(step) -> Artifact[ServerBlueprint]:
    blueprint = Artifact[ServerBlueprint].build(
        kind="blueprint", id=BLUEPRINT.server_name, payload=BLUEPRINT, producer=MADE
    )
    step.store.put(blueprint, RunStamp())
    return blueprint


def test_an_item_runs_from_its_work_item_with_inputs_loaded_from_the_store(tmp_path):
    """Only the content hash travels; the runner loads and types the artifact."""
    step = local_step(load_config(DEMO_CONFIG), tmp_path, "s05")
    blueprint = _stored_blueprint(step)
    work = step.item(
        BLUEPRINT.server_name, s05.formulate_tool_list, inputs={"blueprint": blueprint}
    )
    assert work.inputs == {"blueprint": blueprint.content_hash}
    outcome = execute(work, step.run)
    [made] = outcome.artifacts
    assert made.payload == tool_list(BLUEPRINT)
    assert made.parents == (blueprint.ref,)


def test_an_item_planned_with_other_code_is_refused_as_broken_machinery(tmp_path):
    """A worker running another version of a step module must not run the item."""
    step = local_step(load_config(DEMO_CONFIG), tmp_path, "s05")
    blueprint = _stored_blueprint(step)
    work = step.item("x", s05.formulate_tool_list, inputs={"blueprint": blueprint})
    stale = work.model_copy(update={"code_version": "0" * 16})
    with pytest.raises(MachineryError, match="code of tasks.tool_list_formulation"):
        execute(stale, step.run)


def test_an_item_that_does_not_fit_its_function_is_refused_when_planned():
    """Missing, unknown and doubled arguments are named before anything runs."""
    with pytest.raises(PlanError, match="arguments missing: blueprint"):
        work_item("s05", "x", task=s05.formulate_tool_list)
    with pytest.raises(PlanError, match="inputs it does not take: policy"):
        work_item(
            "s05",
            "x",
            task=s05.formulate_tool_list,
            inputs={"blueprint": "a", "policy": "b"},
        )
    with pytest.raises(PlanError, match="given as input and parameter: blueprint"):
        work_item(
            "s05",
            "x",
            task=s05.formulate_tool_list,
            inputs={"blueprint": "a"},
            params={"blueprint": 1},
        )


@pytest.mark.parametrize("name", ["os:system", "flows.cli:main", "tasks.items:nope"])
def test_only_functions_of_task_modules_can_be_named_by_an_item(name):
    """A work item (e.g. a deployment parameter) cannot name arbitrary code."""
    with pytest.raises(PlanError):
        task_function(name)


def test_work_item_completion_lines_are_dropped_and_failures_kept():
    """The engine's per-item "Finished in state Completed()" line is dropped by
    the task-run logger (it flooded the console and the API's log store at
    thousands of items); a failed item's line and other tasks' lines pass."""
    import logging

    import tasks.runner  # noqa: F401  (installs the filter)

    logger = logging.getLogger("prefect.task_runs")

    def passes(level: int, task_name: str, msg: str) -> bool:
        record = logger.makeRecord(
            logger.name,
            level,
            __file__,
            1,
            msg,
            (),
            None,
            extra={"task_name": task_name},
        )
        return bool(logger.filter(record))

    assert not passes(logging.INFO, "work-item", "Finished in state Completed()")
    assert not passes(
        logging.INFO, "work-item", "Finished in state Cached(type=COMPLETED)"
    )
    assert passes(logging.ERROR, "work-item", "Finished in state Failed('boom')")
    assert passes(logging.INFO, "s01-record_seeds", "Finished in state Completed()")
    assert passes(logging.INFO, "work-item", "a line the item logged itself")

"""prefect.yaml declares deployments whose descriptions say what they really run."""

from __future__ import annotations

import re

import pytest
import yaml
from prefect import Flow

from flows.items import run_work_items
from flows.pipeline import run_pipeline, step_flow
from tasks.steps import PHASES, select_steps
from tests.conftest import REPO

DEPLOYMENTS = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
PIPELINE = [
    d for d in DEPLOYMENTS if d["entrypoint"] == "flows/pipeline.py:run_pipeline"
]
_RANGE = re.compile(r"\b([sr]\d\dx?)-([sr]\d\dx?)\b")


def test_the_pipeline_has_a_flow_for_every_step_it_selects():
    """A run without a step selection runs every catalogued step, each a flow
    taking only the run reference."""
    for info in select_steps():
        found = step_flow(info)
        assert isinstance(found, Flow), info.id
        assert list(found.parameters.properties) == ["run"], info.id


def test_every_deployment_runs_a_known_flow():
    entrypoints = {d["entrypoint"] for d in DEPLOYMENTS}
    assert entrypoints == {
        "flows/pipeline.py:run_pipeline",
        "flows/items.py:run_work_items",
    }


@pytest.mark.parametrize("deployment", PIPELINE, ids=lambda d: d["name"])
def test_each_deployment_description_names_the_steps_it_runs(deployment):
    """The step range in a description is the range the parameters select."""
    params = deployment["parameters"]
    steps = select_steps(
        step=params.get("step"), start=params.get("start"), until=params.get("until")
    )
    ranges = _RANGE.findall(deployment["description"])
    assert ranges == [(steps[0].id, steps[-1].id)]


@pytest.mark.parametrize("deployment", PIPELINE, ids=lambda d: d["name"])
def test_each_deployment_passes_only_parameters_the_flow_takes(deployment):
    """Parameters are names of run_pipeline's arguments, and config files exist."""
    assert set(deployment["parameters"]) <= set(run_pipeline.parameters.properties)
    assert (REPO / deployment["parameters"]["config_path"]).is_file()


@pytest.mark.parametrize("phase", PHASES, ids=lambda p: p.name)
def test_each_phase_has_a_deployment_running_exactly_its_steps(phase):
    found = [d for d in PIPELINE if d["name"] == f"phase-{phase.name}"]
    assert len(found) == 1, f"no deployment phase-{phase.name} in prefect.yaml"
    params = found[0]["parameters"]
    steps = select_steps(start=params.get("start"), until=params.get("until"))
    assert tuple(s.id for s in steps) == phase.steps


def test_the_item_batch_deployment_matches_the_configured_default():
    """run.work_pool.deployment's default names the deployment prefect.yaml has."""
    from schemas.config import WorkPoolConfig

    flow_name, _, name = WorkPoolConfig().deployment.partition("/")
    [items] = [d for d in DEPLOYMENTS if d["entrypoint"].startswith("flows/items.py")]
    assert (run_work_items.name, items["name"]) == (flow_name, name)
    assert items["work_pool"]["name"] == WorkPoolConfig().name
    assert "parameters" not in items  # each run passes its own batch

"""prefect.yaml declares deployments whose descriptions say what they really run."""

from __future__ import annotations

import re

import pytest
import yaml
from prefect import Flow

from flows.pipeline import run_pipeline, step_flow
from tasks.steps import select_steps
from tests.conftest import REPO

DEPLOYMENTS = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
_RANGE = re.compile(r"\b(s\d\d)-(s\d\d)\b")


def test_the_pipeline_has_a_flow_for_every_step_it_selects():
    """A run without a step selection runs every catalogued step, each a flow
    taking only the run reference."""
    for info in select_steps():
        found = step_flow(info)
        assert isinstance(found, Flow), info.id
        assert list(found.parameters.properties) == ["run"], info.id


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_each_deployment_description_names_the_steps_it_runs(deployment):
    """The step range in a description is the range the parameters select."""
    assert deployment["entrypoint"] == "flows/pipeline.py:run_pipeline"
    params = deployment["parameters"]
    steps = select_steps(
        step=params.get("step"), start=params.get("start"), until=params.get("until")
    )
    ranges = _RANGE.findall(deployment["description"])
    assert ranges == [(steps[0].id, steps[-1].id)]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=lambda d: d["name"])
def test_each_deployment_passes_only_parameters_the_flow_takes(deployment):
    """Parameters are names of run_pipeline's arguments, and config files exist."""
    assert set(deployment["parameters"]) <= set(run_pipeline.parameters.properties)
    assert (REPO / deployment["parameters"]["config_path"]).is_file()

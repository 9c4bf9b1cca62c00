"""Per-step model choices reach the model request (they were dead config in the
original)."""

from __future__ import annotations

from pathlib import Path

from schemas.artifact import WorkItem
from schemas.entity import RelationBatchDraft
from tasks.resources import ItemEnv
from tasks.step_run import StepRun
from tasks.store.config_loader import load_config, with_overrides
from tests.conftest import DEMO_CONFIG
from tests.tasks.step_calls import local_step


def _step(tmp_path: Path, overrides: dict, step_id: str) -> StepRun:
    loaded = with_overrides(
        load_config(DEMO_CONFIG), str(tmp_path), overrides=overrides
    )
    return local_step(loaded, tmp_path, step_id)


def _llm(step: StepRun, cfg):
    """The model access of an item planned with `cfg`'s model choice."""
    work = WorkItem(
        step=step.info.id,
        item_key="probe",
        task="tasks.entity_graph:relate_entity_batch",
        llm=step.llm(cfg),
        code_version="-",
    )
    return ItemEnv(step.res, work).llm


def test_step_model_override_is_sent_to_the_endpoint(tmp_path):
    """steps.s03_entity_graph.model replaces the role's model for that step only."""
    step = _step(tmp_path, {"steps.s03_entity_graph.model": "override-model"}, "s03")
    s03 = _llm(step, step.config.steps.s03_entity_graph)
    s02 = _llm(step, step.config.steps.s02_entity_extraction)
    assert s03.model_id == "override-model"
    assert s02.model_id == "scripted-textual"
    answer = s03.ask(
        "s03/relate_entities",
        RelationBatchDraft,
        item_key="Patient-0",
        person={"name": "Patient", "description": "A person who receives care."},
        candidates=[{"name": "Clinic", "description": "A practice."}],
    )
    assert answer.value.related == ["Clinic"]
    assert [r.model for r in step.res.ledger.records()] == ["override-model"]


def test_step_role_choice_uses_that_roles_model(tmp_path):
    """steps.<step>.role: coding sends the coding role's model."""
    step = _step(tmp_path, {"steps.s03_entity_graph.role": "coding"}, "s03")
    s03 = _llm(step, step.config.steps.s03_entity_graph)
    assert s03.model_id == "scripted-coding"

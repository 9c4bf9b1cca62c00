"""Per-step model choices reach the model request (they were dead config in the
original)."""

from __future__ import annotations

from pathlib import Path

from schemas.entity import RelationBatchDraft
from tasks.settings import environment
from tasks.setup import build_context
from tasks.store.config_loader import load_config, with_overrides
from tests.conftest import DEMO_CONFIG


def _context(tmp_path: Path, overrides: dict):
    loaded = with_overrides(
        load_config(DEMO_CONFIG), str(tmp_path), overrides=overrides
    )
    return build_context(loaded, output_dir=tmp_path, env=environment())


def test_step_model_override_is_sent_to_the_endpoint(tmp_path):
    """steps.s03_entity_graph.model replaces the role's model for that step only."""
    ctx = _context(tmp_path, {"steps.s03_entity_graph.model": "override-model"})
    s03 = ctx.step_llm("s03", ctx.config.steps.s03_entity_graph)
    s02 = ctx.step_llm("s02", ctx.config.steps.s02_entity_extraction)
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
    assert [r.model for r in ctx.ledger.records()] == ["override-model"]


def test_step_role_choice_uses_that_roles_model(tmp_path):
    """steps.<step>.role: coding sends the coding role's model."""
    ctx = _context(tmp_path, {"steps.s03_entity_graph.role": "coding"})
    s03 = ctx.step_llm("s03", ctx.config.steps.s03_entity_graph)
    assert s03.model_id == "scripted-coding"

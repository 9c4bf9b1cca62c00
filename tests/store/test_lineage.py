"""Tests of lineage queries: resolving targets, ancestry, descendants, rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.artifact import Artifact, ArtifactRef, Producer, RunStamp, StepManifest
from schemas.blueprint import Function, ServerBlueprint
from schemas.domain import Domain
from schemas.entity import Attribute, Entity
from tasks.store.artifacts import ArtifactStore
from tasks.store.lineage import (
    LineageNode,
    UnknownTarget,
    ancestry,
    descendants,
    find_output_root,
    render,
    resolve,
)
from tasks.store.paths import OutputLayout

RUN = RunStamp(flow_run_id="flow-1")


def _producer(step: str, item: str, model: str | None = "gpt-5") -> Producer:
    return Producer(
        step=step,
        item_key=item,
        model_id=model,
        prompt_id=f"{step.split('_')[0]}/{item}" if model else None,
        params_hash="0" * 16,
        code_version="c0de",
    )


def _entity(name: str, domain: Artifact[Domain]) -> Artifact[Entity]:
    payload = Entity(
        name=name,
        description=name,
        is_person=name == "Patient",
        primary_key="id",
        attributes={"id": Attribute(description="identifier", type="string")},
        source_domains=(domain.id,),
    )
    return Artifact.build(
        kind="entity",
        id=name,
        payload=payload,
        producer=_producer("s02_entity_extraction", "batch_0"),
        parents=[domain.ref],
    )


class Chain:
    """domain -> two entities -> one blueprint (a diamond over the domain)."""

    def __init__(self, store: ArtifactStore) -> None:
        self.domain = Artifact.build(
            kind="domain",
            id="dental_clinic",
            payload=Domain(name="dental_clinic", origin="seed"),
            producer=_producer("s01_domain_expansion", "seed", model=None),
        )
        self.patient = _entity("Patient", self.domain)
        self.dentist = _entity("Dentist", self.domain)
        blueprint = ServerBlueprint(
            server_name="PatientDentalCare",
            description="Dental care for patients",
            core_entity="Patient",
            peripheral_entities=("Dentist",),
            relationships=(),
            functions=(
                Function(
                    name="get_patient",
                    description="Read a patient",
                    effect="read",
                    parameters={},
                ),
            ),
        )
        self.blueprint = Artifact.build(
            kind="blueprint",
            id="PatientDentalCare",
            payload=blueprint,
            producer=_producer("s04_blueprint_generation", "Patient/0"),
            parents=[self.patient.ref, self.dentist.ref],
        )
        for artifact in (self.domain, self.patient, self.dentist, self.blueprint):
            store.put(artifact, RUN)
        store.write_manifest(
            StepManifest(
                step="s04_blueprint_generation",
                config_hash="c" * 64,
                outputs=(self.blueprint.ref,),
                exports={"tool_lists/PatientDentalCare.json": self.blueprint.ref},
            )
        )


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(OutputLayout(tmp_path / "out"))


@pytest.fixture
def chain(store: ArtifactStore) -> Chain:
    return Chain(store)


def _line(artifact: Artifact, depth: int, suffix: str = "") -> str:
    p = artifact.producer
    return (
        f"{'  ' * depth}{artifact.kind} {artifact.id}  {artifact.content_hash[:12]}  "
        f"step={p.step} model={p.model_id or '-'} prompt={p.prompt_id or '-'}{suffix}"
    )


def test_ancestry_walks_back_to_the_domain_and_marks_the_repeat(
    store: ArtifactStore, chain: Chain
) -> None:
    """The blueprint's ancestry reaches the domain through both entities, once."""
    tree = ancestry(store, chain.blueprint.ref)
    assert render(tree) == "\n".join(
        [
            _line(chain.blueprint, 0),
            _line(chain.patient, 1),
            _line(chain.domain, 2),
            _line(chain.dentist, 1),
            _line(chain.domain, 2, "  (see above)"),
        ]
    )
    repeat = tree.children[1].children[0]
    assert repeat.repeat and repeat.children == ()


def test_descendants_lead_from_the_domain_to_the_blueprint(
    store: ArtifactStore, chain: Chain
) -> None:
    """Descendants invert the parent links; children are ordered by kind and id."""
    tree = descendants(store, chain.domain.ref)
    assert [c.ref.id for c in tree.children] == ["Dentist", "Patient"]
    assert tree.children[0].children[0].ref == chain.blueprint.ref
    assert tree.children[1].children[0].repeat
    leaf = descendants(store, chain.blueprint.ref)
    assert leaf == LineageNode(
        ref=chain.blueprint.ref, producer=chain.blueprint.producer
    )


def test_missing_parent_renders_as_missing(store: ArtifactStore) -> None:
    """A parent that is not in the store shows up as (missing: ...)."""
    ghost = ArtifactRef(kind="domain", id="ghost_town", content_hash="ab" * 32)
    orphan = Artifact.build(
        kind="domain_topics",
        id="domain_topics",
        payload=Domain(name="lonely", origin="seed"),
        producer=_producer("s01_domain_expansion", "final"),
        parents=[ghost],
    )
    store.put(orphan, RUN)
    lines = render(ancestry(store, orphan.ref)).splitlines()
    assert lines[1] == f"  (missing: domain ghost_town {'ab' * 6})"


def test_resolve_export_path_relative_and_absolute(
    store: ArtifactStore, chain: Chain
) -> None:
    """An export path listed in a manifest resolves to the artifact it came from."""
    relative = "tool_lists/PatientDentalCare.json"
    assert resolve(store, relative) == [chain.blueprint.ref]
    absolute = str(store.layout.tool_list("PatientDentalCare"))
    assert resolve(store, absolute) == [chain.blueprint.ref]


def test_resolve_hash_prefix_full_hash_and_kind_id(
    store: ArtifactStore, chain: Chain
) -> None:
    """Hash prefixes (8+ digits), full hashes and kind:id all find the artifact."""
    digest = chain.patient.content_hash
    assert resolve(store, digest[:8]) == [chain.patient.ref]
    assert resolve(store, digest.upper()) == [chain.patient.ref]
    assert resolve(store, "entity:Dentist") == [chain.dentist.ref]
    assert resolve(store, "blueprint:PatientDentalCare") == [chain.blueprint.ref]


def test_resolve_kind_id_lists_current_versions_before_older_ones(
    store: ArtifactStore, chain: Chain
) -> None:
    """A re-generated artifact keeps its old version findable, after the current one."""
    old = Artifact.build(
        kind="blueprint",
        id="PatientDentalCare",
        payload=chain.blueprint.payload.model_copy(update={"description": "old"}),
        producer=chain.blueprint.producer,
        parents=chain.blueprint.parents,
    )
    store.put(old, RUN)
    assert resolve(store, "blueprint:PatientDentalCare") == [
        chain.blueprint.ref,
        old.ref,
    ]


def test_resolve_refuses_unknown_short_and_ambiguous_targets(
    store: ArtifactStore, chain: Chain
) -> None:
    """Targets that match nothing, or too much, raise UnknownTarget with a reason."""
    with pytest.raises(UnknownTarget, match="too short"):
        resolve(store, chain.patient.content_hash[:6])
    with pytest.raises(UnknownTarget, match="no artifact entity:Nurse"):
        resolve(store, "entity:Nurse")
    with pytest.raises(UnknownTarget, match="is not an output file of this run"):
        resolve(store, "tool_lists/Unknown.json")
    with pytest.raises(UnknownTarget, match="not an export path .* not kind:id"):
        resolve(store, "nurse:Ann")
    for tail in ("0", "1"):
        fake = store.layout.object_path("deadbeef" + tail * 56)
        fake.parent.mkdir(parents=True, exist_ok=True)
        fake.write_text("{}", encoding="utf-8")
    with pytest.raises(UnknownTarget, match="ambiguous"):
        resolve(store, "deadbeef")


def test_find_output_root_walks_up_to_the_folder_holding_agentskiller(
    store: ArtifactStore, chain: Chain, tmp_path: Path
) -> None:
    """Any path inside a run, existing or not, leads to the run's folder."""
    root = store.layout.root.resolve()
    assert find_output_root(store.layout.tool_list("PatientDentalCare")) == root
    assert find_output_root(root / "tool_lists" / "missing" / "x.json") == root
    assert find_output_root(store.layout.lineage_dir) == root
    assert find_output_root(root) == root
    assert find_output_root(tmp_path) is None

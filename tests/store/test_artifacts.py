"""Tests of the artifact store: objects, lineage records, manifests, exports."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from schemas.artifact import Artifact, Producer, RunStamp, StepManifest
from schemas.domain import Domain
from schemas.entity import Attribute, Entity
from tasks.store.artifacts import (
    ArtifactInvalid,
    ArtifactNotFound,
    ArtifactStore,
    MissingStepOutput,
)
from tasks.store.paths import OutputLayout

RUN = RunStamp(flow_run_id="flow-1", task_run_id="task-1")


def _producer(step: str, item: str) -> Producer:
    return Producer(
        step=step,
        item_key=item,
        model_id="gpt-5",
        prompt_id=f"{step}/prompt",
        prompt_hash="p" * 8,
        seed=7,
        params_hash="0" * 16,
        code_version="c0de",
    )


def _domain(name: str) -> Artifact[Domain]:
    return Artifact.build(
        kind="domain",
        id=name,
        payload=Domain(name=name, origin="expansion", strategy="horizontal"),
        producer=_producer("s01_domain_expansion", name),
    )


def _entity(name: str, parent: Artifact[Domain]) -> Artifact[Entity]:
    entity = Entity(
        name=name,
        description=f"A {name} — with non-ASCII text",
        is_person=True,
        primary_key="id",
        attributes={"id": Attribute(description="identifier", type="string")},
        source_domains=(parent.id,),
    )
    return Artifact.build(
        kind="entity",
        id=name,
        payload=entity,
        producer=_producer("s02_entity_extraction", name),
        parents=[parent.ref],
    )


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(OutputLayout(tmp_path / "out"))


def test_put_then_get_returns_an_equal_typed_artifact(store: ArtifactStore) -> None:
    """An artifact read back validates as the requested type and equals the original."""
    domain = _domain("dental_clinic")
    entity = _entity("Patient", domain)
    store.put(domain, RUN)
    ref = store.put(entity, RUN)

    loaded = store.get(ref, Entity)
    assert loaded == entity
    assert isinstance(loaded.payload, Entity)
    assert store.get(entity.content_hash, Entity) == entity
    assert store.get_raw(ref)["payload"]["description"] == entity.payload.description


def test_same_artifact_gives_byte_identical_object_files(tmp_path: Path) -> None:
    """Two stores given equal artifacts write the same bytes: sorted keys, indent 2."""
    first = ArtifactStore(OutputLayout(tmp_path / "a"))
    second = ArtifactStore(OutputLayout(tmp_path / "b"))
    artifact = _entity("Patient", _domain("dental_clinic"))
    first.put(artifact, RUN)
    second.put(artifact, RunStamp(flow_run_id="other-run"))
    second.put(artifact, RunStamp(flow_run_id="third-run"))

    a = first.layout.object_path(artifact.content_hash).read_bytes()
    b = second.layout.object_path(artifact.content_hash).read_bytes()
    assert a == b
    expected = json.dumps(
        artifact.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False
    )
    assert a.decode("utf-8") == expected + "\n"
    digest = artifact.content_hash
    assert first.layout.object_path(digest).parent.name == digest[:2]


def test_lineage_record_keeps_parents_exports_and_latest_run(
    store: ArtifactStore,
) -> None:
    """Re-putting an artifact rewrites its lineage record with the newest run stamp."""
    domain = _domain("dental_clinic")
    entity = _entity("Patient", domain)
    store.put(entity, RUN)
    later = RunStamp(flow_run_id="flow-2", task_run_id="task-9", cached=True)
    store.put(entity, later, exports=["entities.json"])

    record = store.lineage(entity.content_hash)
    assert record is not None
    assert record.ref == entity.ref
    assert record.parents == (domain.ref,)
    assert record.producer == entity.producer
    assert record.run == later
    assert record.exports == ("entities.json",)
    assert store.lineage("f" * 64) is None
    assert [r.ref for r in store.iter_lineage()] == [entity.ref]


def test_concurrent_puts_from_threads_store_everything_intact(
    store: ArtifactStore,
) -> None:
    """Many threads putting distinct and identical artifacts leave valid files only."""
    domains = [_domain(f"domain_{i:02d}") for i in range(40)]
    shared = _domain("shared_domain")
    jobs = [*domains, *([shared] * 40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        refs = list(pool.map(lambda a: store.put(a, RunStamp(task_run_id=a.id)), jobs))

    assert refs == [a.ref for a in jobs]
    for artifact in [*domains, shared]:
        assert store.get(artifact.ref, Domain) == artifact
    assert len(list(store.iter_lineage())) == 41
    leftovers = [p for p in store.layout.internal.rglob("*") if p.suffix == ".tmp"]
    assert leftovers == []


def test_get_of_missing_artifact_names_kind_id_and_hash(store: ArtifactStore) -> None:
    """ArtifactNotFound says which artifact is missing."""
    ghost = _domain("ghost_town")
    with pytest.raises(ArtifactNotFound) as info:
        store.get(ghost.ref, Domain)
    message = str(info.value)
    assert "domain:ghost_town" in message
    assert ghost.content_hash in message


def test_get_with_wrong_payload_type_raises_artifact_invalid(
    store: ArtifactStore,
) -> None:
    """Asking for the wrong payload type is a clear error, not a silent coercion."""
    domain = _domain("dental_clinic")
    store.put(domain, RUN)
    with pytest.raises(ArtifactInvalid, match=r"Artifact\[Entity\]"):
        store.get(domain.ref, Entity)


def test_load_outputs_follows_manifest_order_and_filters_kind(
    store: ArtifactStore,
) -> None:
    """load_outputs returns a step's outputs in manifest order, optionally one kind."""
    domain = _domain("dental_clinic")
    patient = _entity("Patient", domain)
    dentist = _entity("Dentist", domain)
    for artifact in (domain, patient, dentist):
        store.put(artifact, RUN)
    manifest = StepManifest(
        step="s02_entity_extraction",
        config_hash="c" * 64,
        outputs=(dentist.ref, domain.ref, patient.ref),
        exports={"entities.json": patient.ref},
    )
    store.write_manifest(manifest)
    manifest = manifest.model_copy(update={"output_id": store.output_id()})

    assert store.read_manifest("s02_entity_extraction") == manifest
    loaded = store.load_outputs("s02_entity_extraction", Entity, kind="entity")
    assert [a.id for a in loaded] == ["Dentist", "Patient"]
    assert store.load_outputs("s02_entity_extraction", Domain, kind="domain") == [
        domain
    ]
    assert list(store.iter_manifests()) == [manifest]


def test_load_outputs_of_a_step_that_never_ran_says_how_to_run_it(
    tmp_path: Path,
) -> None:
    """MissingStepOutput names the step, the directory and the command to run."""
    layout = OutputLayout(tmp_path / "out")
    store = ArtifactStore(layout, config_hint="configs/demo.yaml")
    assert store.read_manifest("s02_entity_extraction") is None
    with pytest.raises(MissingStepOutput) as info:
        store.load_outputs("s02_entity_extraction", Entity)
    assert str(info.value) == (
        f"step s02_entity_extraction has no outputs in {layout.root}; run it first: "
        "agentskiller run --config configs/demo.yaml --step s02"
    )


def test_write_export_writes_utf8_json_inside_the_root(store: ArtifactStore) -> None:
    """Exports land relative to the output root; escaping the root is refused."""
    path = store.write_export("tool_lists/Dental.json", {"name": "Zahnärzte"})
    assert path == store.layout.tool_list("Dental")
    assert path.read_text(encoding="utf-8") == '{\n  "name": "Zahnärzte"\n}\n'
    text_path = store.write_export_text("policies/Dental.md", "# Policy\n")
    assert text_path.read_text(encoding="utf-8") == "# Policy\n"
    with pytest.raises(ValueError, match="inside"):
        store.write_export("../escape.json", {})

"""The store checks what it reads: damaged objects and foreign manifests are named."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from schemas.artifact import StepManifest
from schemas.domain import Domain
from schemas.entity import Entity
from tasks.store.artifacts import ArtifactStore, CorruptObject, ManifestInvalid
from tasks.store.paths import OutputLayout
from tests.store.test_artifacts import RUN, _domain, _entity


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(OutputLayout(tmp_path / "out"), config_hint="demo.yaml")


def test_truncated_object_read_names_the_file_and_the_step_to_rerun(
    store: ArtifactStore,
) -> None:
    """A torn object file raises CorruptObject naming it and its producing step."""
    domain = _domain("dental_clinic")
    store.put(domain, RUN)
    path = store.layout.object_path(domain.content_hash)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptObject) as info:
        store.get(domain.ref, Domain)
    message = str(info.value)
    assert info.value.path == path
    assert message.startswith(f"artifact object {path} is corrupt: not JSON")
    assert "re-run step s01_domain_expansion, which produced domain:dental_clinic" in (
        message
    )
    assert "agentskiller run --config demo.yaml --step s01_domain_expansion" in message


def test_object_whose_content_does_not_match_its_name_is_corrupt(
    store: ArtifactStore,
) -> None:
    """Valid JSON of another artifact under this hash is refused, also by get_raw."""
    domain, other = _domain("dental_clinic"), _domain("bank")
    store.put(domain, RUN)
    store.put(other, RUN)
    path = store.layout.object_path(domain.content_hash)
    path.write_bytes(store.layout.object_path(other.content_hash).read_bytes())
    with pytest.raises(CorruptObject, match="its content hashes to"):
        store.get_raw(domain.content_hash)
    path.write_text('{"kind": "domain"}')
    with pytest.raises(CorruptObject, match="not an artifact"):
        store.get(domain.ref, Domain)


def test_put_rewrites_a_damaged_object_and_leaves_a_good_one_alone(
    store: ArtifactStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Putting the artifact again repairs a truncated file; an intact one is kept."""
    domain = _domain("dental_clinic")
    entity = _entity("Patient", domain)
    store.put(entity, RUN)
    path = store.layout.object_path(entity.content_hash)
    good = path.read_bytes()
    inode = path.stat().st_ino
    store.put(entity, RUN)
    assert path.stat().st_ino == inode  # not replaced
    path.write_bytes(good[:-30])
    with caplog.at_level(logging.WARNING, logger="tasks.store.artifacts"):
        store.put(entity, RUN)
    assert path.read_bytes() == good
    assert store.get(entity.ref, Entity) == entity
    assert f"rewriting corrupt artifact object {path} (not JSON" in caplog.text


def test_put_keeps_the_first_producer_of_an_intact_object(
    store: ArtifactStore,
) -> None:
    """Equal content from another producer (say, a new prompt) is not rewritten."""
    entity = _entity("Patient", _domain("dental_clinic"))
    store.put(entity, RUN)
    path = store.layout.object_path(entity.content_hash)
    first = path.read_bytes()
    producer = entity.producer.model_copy(update={"prompt_hash": "q" * 8})
    again = entity.model_copy(update={"producer": producer})
    store.put(again, RUN)
    assert path.read_bytes() == first
    assert store.lineage(entity.content_hash).producer == producer  # type: ignore[union-attr]


STEP = "s01_domain_expansion"


def _manifest(store: ArtifactStore, *refs) -> Path:
    return store.write_manifest(
        StepManifest(step=STEP, config_hash="c" * 64, outputs=tuple(refs))
    )


def test_manifests_carry_the_output_location_id_written_once(
    store: ArtifactStore,
) -> None:
    """The first manifest creates `output-id`; later ones reuse the same id."""
    domain = _domain("dental_clinic")
    store.put(domain, RUN)
    _manifest(store, domain.ref)
    first = store.layout.identity_file.read_text().strip()
    _manifest(store, domain.ref)
    assert store.output_id() == first and len(first) == 32
    assert store.read_manifest(STEP).output_id == first  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"step": "s01_domain_exp', "not JSON"),
        (b'["a", "list"]', "not a step manifest ((top level):"),
        (b'{"step": "s01_domain_expansion"}', "not a step manifest (config_hash:"),
        (
            b'{"step": "s01_domain_expansion", "config_hash": "c", "outputs": []}',
            "it names no output location",
        ),
    ],
)
def test_corrupt_manifest_is_named_with_what_is_wrong(
    store: ArtifactStore, content: bytes, problem: str
) -> None:
    """A torn or foreign-shaped manifest file raises ManifestInvalid naming it."""
    path = store.layout.manifest_path(STEP)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.raises(ManifestInvalid) as info:
        store.load_outputs(STEP, Domain)
    assert info.value.path == path
    assert str(info.value).startswith(f"step manifest {path} is unusable: {problem}")
    assert str(info.value).endswith(
        "re-run that step: agentskiller run --config demo.yaml --step s01"
    )


def test_manifest_of_another_output_location_is_refused(tmp_path: Path) -> None:
    """A manifest copied from another output directory is named as foreign."""
    mine = ArtifactStore(OutputLayout(tmp_path / "mine"))
    other = ArtifactStore(OutputLayout(tmp_path / "other"))
    domain = _domain("dental_clinic")
    for store in (mine, other):
        store.put(domain, RUN)
        _manifest(store, domain.ref)
    target = mine.layout.manifest_path(STEP)
    target.write_bytes(other.layout.manifest_path(STEP).read_bytes())
    with pytest.raises(ManifestInvalid) as info:
        mine.read_manifest(STEP)
    message = str(info.value)
    assert "written for another output location" in message
    assert f"output id {other.output_id()}" in message
    assert f"this one is {mine.output_id()}" in message


def test_manifest_listing_objects_missing_here_is_refused(
    store: ArtifactStore,
) -> None:
    """Every object a manifest lists must be in this store."""
    kept, lost = _domain("dental_clinic"), _domain("bank")
    store.put(kept, RUN)
    _manifest(store, kept.ref, lost.ref)
    with pytest.raises(ManifestInvalid, match=r"lists 1 object\(s\) missing here: "):
        store.read_manifest(STEP)
    with pytest.raises(ManifestInvalid) as info:
        list(store.iter_manifests())
    assert f"domain:bank ({lost.content_hash[:12]})" in str(info.value)


def test_manifest_of_another_step_under_this_name_is_refused(
    store: ArtifactStore,
) -> None:
    """A manifest file renamed to another step's name is caught."""
    domain = _domain("dental_clinic")
    store.put(domain, RUN)
    path = _manifest(store, domain.ref)
    path.rename(store.layout.manifest_path("s02_entity_extraction"))
    with pytest.raises(ManifestInvalid, match="it is the manifest of step s01_domain"):
        store.read_manifest("s02_entity_extraction")

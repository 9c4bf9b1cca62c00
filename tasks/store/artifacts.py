"""The artifact store: content-addressed objects, lineage records, step manifests.

Inputs: typed `Artifact`s with the `RunStamp` of the run that made them, step
manifests, and export data. Output: `ArtifactRef`s, validated artifacts read back,
lineage records, and export files. Side effects, all under one `OutputLayout`:
`objects/<hash[:2]>/<hash>.json` (immutable, written once, byte-identical for equal
artifacts), `lineage/<hash>.json` (rewritten by each run that produces the artifact,
so the latest run stamp wins), `steps/<step>.json`, and user-facing exports relative
to the output root. Every write is atomic; the store holds no lock and no open file,
so many Prefect tasks may share one instance (or a pickled copy) concurrently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.artifact import (
    Artifact,
    ArtifactRef,
    LineageRecord,
    RunStamp,
    StepManifest,
)
from tasks.store.atomic import write_json_atomic, write_text_atomic
from tasks.store.paths import OutputLayout

P = TypeVar("P", bound=BaseModel)

_HEX = re.compile(r"^[0-9a-f]+$")


class StoreError(Exception):
    """Base of the errors the store raises on purpose."""


class ArtifactNotFound(StoreError, LookupError):
    """An artifact object is not in the store."""


class ArtifactInvalid(StoreError):
    """A stored object does not validate as the requested artifact type."""


class UnusableStepOutput(StoreError):
    """Outputs of an earlier step cannot be used: missing, corrupt or foreign."""


class MissingStepOutput(UnusableStepOutput):
    """A step whose outputs are needed has not run in this output directory."""


class ArtifactStore:
    """Reads and writes artifacts and their lineage under one output directory.

    Args:
        layout: Where everything goes.
        config_hint: The configuration path to show in "run it first" messages.
    """

    def __init__(self, layout: OutputLayout, *, config_hint: str | None = None) -> None:
        self._layout = layout
        self._config_hint = config_hint

    @property
    def layout(self) -> OutputLayout:
        return self._layout

    # Artifacts -------------------------------------------------------------------

    def put(
        self, artifact: Artifact[Any], run: RunStamp, exports: Sequence[str] = ()
    ) -> ArtifactRef:
        """Store an artifact (once) and (re)write its lineage record.

        Args:
            artifact: The artifact; its object file is written only if absent.
            run: Provenance of the run that produced it this time.
            exports: Export paths (relative to the output root) made from it.

        Returns:
            The artifact's reference.
        """
        digest = artifact.content_hash
        obj_path = self._layout.object_path(digest)
        if not obj_path.exists():
            data = artifact.model_dump(mode="json", serialize_as_any=True)
            write_json_atomic(obj_path, data, sort_keys=True)
        record = LineageRecord(
            ref=artifact.ref,
            parents=artifact.parents,
            producer=artifact.producer,
            run=run,
            exports=tuple(sorted(set(exports))),
        )
        write_json_atomic(
            self._layout.lineage_path(digest),
            record.model_dump(mode="json"),
            sort_keys=True,
        )
        return artifact.ref

    def has(self, content_hash: str) -> bool:
        """Whether the object with this content hash is stored."""
        return self._layout.object_path(content_hash).is_file()

    def get(self, ref_or_hash: ArtifactRef | str, payload_type: type[P]) -> Artifact[P]:
        """Load and validate an artifact.

        Args:
            ref_or_hash: Its reference or full content hash.
            payload_type: The payload model to validate against.

        Returns:
            The artifact, typed as `Artifact[payload_type]`.

        Raises:
            ArtifactNotFound: If the object is not stored.
            ArtifactInvalid: If it does not validate as `Artifact[payload_type]`.
        """
        raw = self._read_object(ref_or_hash)
        try:
            return Artifact[payload_type].model_validate(raw)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise ArtifactInvalid(
                f"stored artifact {raw.get('kind')}:{raw.get('id')} "
                f"({raw.get('content_hash', '?')[:12]}) does not validate as "
                f"Artifact[{payload_type.__name__}]: {exc.error_count()} error(s); "
                f"first: {_first_error(exc)}"
            ) from exc

    def get_raw(self, ref_or_hash: ArtifactRef | str) -> dict[str, Any]:
        """Load an artifact object as plain JSON data, without validation.

        Raises:
            ArtifactNotFound: If the object is not stored.
        """
        return self._read_object(ref_or_hash)

    def match_prefix(self, prefix: str) -> list[str]:
        """Full content hashes of stored objects starting with `prefix`, sorted.

        Args:
            prefix: At least two lowercase hex digits.
        """
        prefix = prefix.lower()
        if len(prefix) < 2 or not _HEX.match(prefix):
            return []
        bucket = self._layout.objects_dir / prefix[:2]
        if not bucket.is_dir():
            return []
        return sorted(
            p.stem for p in bucket.glob("*.json") if p.stem.startswith(prefix)
        )

    # Lineage ---------------------------------------------------------------------

    def lineage(self, content_hash: str) -> LineageRecord | None:
        """The lineage record of one artifact version, or None if it has none."""
        path = self._layout.lineage_path(content_hash)
        if not path.is_file():
            return None
        return LineageRecord.model_validate_json(path.read_bytes())

    def iter_lineage(self) -> Iterator[LineageRecord]:
        """Every lineage record in the store, ordered by content hash."""
        directory = self._layout.lineage_dir
        if not directory.is_dir():
            return
        for path in sorted(directory.glob("*.json")):
            yield LineageRecord.model_validate_json(path.read_bytes())

    # Exports ---------------------------------------------------------------------

    def write_export(self, relpath: str, data: Any) -> Path:
        """Write a user-facing JSON export, relative to the output root.

        Args:
            relpath: POSIX path inside the output root, e.g. `blueprints.json`.
            data: JSON-compatible data or a pydantic model.

        Returns:
            The absolute path written.
        """
        return write_json_atomic(self._layout.export_path(relpath), data)

    def write_export_text(self, relpath: str, text: str) -> Path:
        """Write a user-facing text export (Markdown, Python, JSONL...).

        Returns:
            The absolute path written.
        """
        return write_text_atomic(self._layout.export_path(relpath), text)

    # Step manifests --------------------------------------------------------------

    def write_manifest(self, manifest: StepManifest) -> Path:
        """Record the current outcome of a step (replacing the previous one).

        Returns:
            The manifest file.
        """
        return write_json_atomic(
            self._layout.manifest_path(manifest.step),
            manifest.model_dump(mode="json"),
            sort_keys=True,
        )

    def read_manifest(self, step: str) -> StepManifest | None:
        """The manifest of a step, or None if the step has not run here."""
        path = self._layout.manifest_path(step)
        if not path.is_file():
            return None
        return StepManifest.model_validate_json(path.read_bytes())

    def iter_manifests(self) -> Iterator[StepManifest]:
        """Every step manifest, ordered by step name."""
        directory = self._layout.steps_dir
        if not directory.is_dir():
            return
        for path in sorted(directory.glob("*.json")):
            yield StepManifest.model_validate_json(path.read_bytes())

    def load_outputs(
        self, step: str, payload_type: type[P], kind: str | None = None
    ) -> list[Artifact[P]]:
        """Load a step's output artifacts in manifest order.

        Args:
            step: The step name, e.g. `s02_entity_extraction`.
            payload_type: The payload model of the wanted outputs.
            kind: Only outputs of this artifact kind; None means all.

        Returns:
            The validated artifacts (empty if the step produced none of `kind`).

        Raises:
            MissingStepOutput: If the step has no manifest in this output directory.
            ArtifactNotFound: If the manifest names an object that is gone.
        """
        manifest = self.read_manifest(step)
        if manifest is None:
            short = step.split("_", 1)[0]
            config = self._config_hint or "<config.yaml>"
            raise MissingStepOutput(
                f"step {step} has no outputs in {self._layout.root}; run it first: "
                f"agentskiller run --config {config} --step {short}"
            )
        refs = [r for r in manifest.outputs if kind is None or r.kind == kind]
        return [self.get(ref, payload_type) for ref in refs]

    # Internals -------------------------------------------------------------------

    def _read_object(self, ref_or_hash: ArtifactRef | str) -> dict[str, Any]:
        digest = (
            ref_or_hash.content_hash
            if isinstance(ref_or_hash, ArtifactRef)
            else ref_or_hash
        )
        path = self._layout.object_path(digest)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(
                self._not_found_message(ref_or_hash, digest)
            ) from None
        return json.loads(raw)

    def _not_found_message(self, ref_or_hash: ArtifactRef | str, digest: str) -> str:
        if isinstance(ref_or_hash, ArtifactRef):
            what = f"{ref_or_hash.kind}:{ref_or_hash.id}"
        else:
            record = self.lineage(digest)
            what = (
                f"{record.ref.kind}:{record.ref.id}" if record else "(unknown kind:id)"
            )
        return (
            f"artifact {what} with content hash {digest} is not in the store "
            f"({self._layout.objects_dir})"
        )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"{loc}: {error['msg']}"

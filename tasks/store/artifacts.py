"""The artifact store: content-addressed objects, lineage records, step manifests.

Inputs: typed `Artifact`s with the `RunStamp` of the run that made them, step
manifests, and export data. Output: `ArtifactRef`s, validated artifacts read back,
lineage records, and export files. Side effects, all under one `OutputLayout`:
`objects/<hash[:2]>/<hash>.json` (written once, byte-identical for equal artifacts,
checked against their content hash on every read, rewritten by `put` only when
damaged),
`lineage/<hash>.json` (rewritten by each run that produces the artifact, so the
latest run stamp wins), `steps/<step>.json` (stamped with the output location's id
from `output-id`, checked on read), and user-facing exports relative to the output
root. The layout's root is a local folder or an fsspec URL (`s3://bucket/prefix`);
the code below is the same for both (`tasks.store.location`). Every write is atomic
(a temporary file and a rename locally, one whole-object PUT at a URL); the store
holds no lock and no open file, so many Prefect tasks may share one instance (or a
pickled copy) concurrently.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.artifact import (
    Artifact,
    ArtifactRef,
    LineageRecord,
    RunStamp,
    StepManifest,
)
from schemas.report import RunReport
from tasks.store.atomic import write_json_atomic, write_text_atomic
from tasks.store.integrity import create_once, manifest_problem, object_problem
from tasks.store.location import StorePath
from tasks.store.paths import OutputLayout

P = TypeVar("P", bound=BaseModel)

_LOG = logging.getLogger(__name__)

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


class ManifestInvalid(UnusableStepOutput):
    """A step manifest is corrupt or was not written for this output location.

    Attributes:
        path: The manifest file.
    """

    def __init__(self, message: str, path: StorePath) -> None:
        super().__init__(message)
        self.path = path


class CorruptObject(UnusableStepOutput):
    """A stored object is not the artifact its file name (content hash) promises.

    Attributes:
        path: The object file.
    """

    def __init__(self, message: str, path: StorePath) -> None:
        super().__init__(message)
        self.path = path


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
            artifact: The artifact; its object file is written when absent, and
                rewritten when it does not hold an artifact with this content hash
                (a torn or altered file), so a re-run repairs the store. A valid
                object is never rewritten: the first producer record stays.
            run: Provenance of the run that produced it this time.
            exports: Export paths (relative to the output root) made from it.

        Returns:
            The artifact's reference.
        """
        digest = artifact.content_hash
        obj_path = self._layout.object_path(digest)
        found = _read_if_present(obj_path)
        problem = "absent" if found is None else object_problem(found, digest)[0]
        if problem:
            if found is not None:
                _LOG.warning(
                    "rewriting corrupt artifact object %s (%s)", obj_path, problem
                )
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
            CorruptObject: If the object file is not the artifact it is named for.
            ArtifactInvalid: If it does not validate as `Artifact[payload_type]`.
        """
        digest = (
            ref_or_hash.content_hash
            if isinstance(ref_or_hash, ArtifactRef)
            else ref_or_hash
        )
        model = Artifact[payload_type]  # type: ignore[valid-type]
        data = self._parse_object(digest)
        if data is not None:
            # One hash check, not two: validation recomputes the content hash of
            # what it validated and rejects a mismatch, so an object that
            # validates as the artifact named `digest` is that artifact.
            try:
                return model.model_validate(data)
            except ValidationError:
                pass  # say precisely what is wrong, below
        raw = self._read_object(ref_or_hash)
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise ArtifactInvalid(
                f"stored artifact {raw.get('kind')}:{raw.get('id')} "
                f"({raw.get('content_hash', '?')[:12]}) does not validate as "
                f"Artifact[{payload_type.__name__}]: {exc.error_count()} error(s); "
                f"first: {_first_error(exc)}"
            ) from exc

    def get_raw(self, ref_or_hash: ArtifactRef | str) -> dict[str, Any]:
        """Load an artifact object as plain JSON data whose content hash checks.

        Raises:
            ArtifactNotFound: If the object is not stored.
            CorruptObject: If the object file is not the artifact it is named for.
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
        raw = _read_if_present(self._layout.lineage_path(content_hash))
        if raw is None:
            return None
        return LineageRecord.model_validate_json(raw)

    def iter_lineage(self) -> Iterator[LineageRecord]:
        """Every lineage record in the store, ordered by content hash."""
        directory = self._layout.lineage_dir
        if not directory.is_dir():
            return
        for path in sorted(directory.glob("*.json")):
            yield LineageRecord.model_validate_json(path.read_bytes())

    # Exports ---------------------------------------------------------------------

    def write_export(self, relpath: str, data: Any) -> StorePath:
        """Write a user-facing JSON export, relative to the output root.

        Args:
            relpath: POSIX path inside the output root, e.g. `blueprints.json`.
            data: JSON-compatible data or a pydantic model.

        Returns:
            The absolute path written.
        """
        return write_json_atomic(self._layout.export_path(relpath), data)

    def write_export_text(self, relpath: str, text: str) -> StorePath:
        """Write a user-facing text export (Markdown, Python, JSONL...).

        Returns:
            The absolute path written.
        """
        return write_text_atomic(self._layout.export_path(relpath), text)

    # Step manifests --------------------------------------------------------------

    def write_manifest(self, manifest: StepManifest) -> StorePath:
        """Record the current outcome of a step (replacing the previous one).

        The manifest is stamped with this output location's id.

        Returns:
            The manifest file.
        """
        stamped = manifest.model_copy(update={"output_id": self.output_id()})
        return write_json_atomic(
            self._layout.manifest_path(manifest.step),
            stamped.model_dump(mode="json"),
            sort_keys=True,
        )

    def read_manifest(self, step: str) -> StepManifest | None:
        """The manifest of a step, or None if the step has not run here.

        Raises:
            ManifestInvalid: If the file is not JSON, not a step manifest, the
                manifest of another step or output location, or lists objects
                that are not in this store.
        """
        path = self._layout.manifest_path(step)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        problem, manifest = manifest_problem(
            raw, step=step, output_id=self.output_id(), has=self.has
        )
        if problem:
            raise ManifestInvalid(
                f"step manifest {path} is unusable: {problem}; "
                f"{self._rerun_hint(step)}",
                path,
            )
        return manifest

    def iter_manifests(self) -> Iterator[StepManifest]:
        """Every step manifest, ordered by step name.

        Raises:
            ManifestInvalid: As `read_manifest`.
        """
        directory = self._layout.steps_dir
        if not directory.is_dir():
            return
        for path in sorted(directory.glob("*.json")):
            manifest = self.read_manifest(path.stem)
            if manifest is not None:
                yield manifest

    def output_id(self) -> str:
        """The random id of this output location, created at first use."""
        path = self._layout.identity_file
        existing = _read_if_present(path)
        if existing is None:
            create_once(path, uuid.uuid4().hex.encode("ascii") + b"\n")
            existing = path.read_bytes()
        return existing.decode("ascii", errors="replace").strip()

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
            ManifestInvalid: If its manifest is corrupt or foreign (see
                `read_manifest`).
            CorruptObject: If an output's object file is damaged.
        """
        manifest = self.read_manifest(step)
        if manifest is None:
            raise MissingStepOutput(
                f"step {step} has no outputs in {self._layout.root}; "
                f"{self._rerun_hint(step, first=True)}"
            )
        refs = [r for r in manifest.outputs if kind is None or r.kind == kind]
        return [self.get(ref, payload_type) for ref in refs]

    # Run reports -----------------------------------------------------------------

    def latest_report(self) -> RunReport | None:
        """The report of the most recent run here (by file time), or None when
        there is none or it does not read as a report."""
        directory = self._layout.reports_dir
        if not directory.is_dir():
            return None
        paths = sorted(directory.glob("*.json"), key=lambda p: p.stat().st_mtime)
        if not paths:
            return None
        try:
            return RunReport.model_validate_json(paths[-1].read_bytes())
        except ValidationError:
            return None

    # Internals -------------------------------------------------------------------

    def _rerun_hint(self, step: str, *, first: bool = False) -> str:
        short = step.split("_", 1)[0]
        config = self._config_hint or "<config.yaml>"
        verb = "run it first" if first else "re-run that step"
        return f"{verb}: agentskiller run --config {config} --step {short}"

    def _parse_object(self, digest: str) -> dict[str, Any] | None:
        """The object file of `digest` as JSON claiming that hash, else None
        (absent, unreadable as JSON, or claiming another hash)."""
        try:
            data = json.loads(self._layout.object_path(digest).read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        if isinstance(data, dict) and data.get("content_hash") == digest:
            return data
        return None

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
        problem, data = object_problem(raw, digest)
        if problem:
            raise CorruptObject(self._corrupt_message(path, digest, problem), path)
        return data

    def _corrupt_message(self, path: StorePath, digest: str, problem: str) -> str:
        try:
            record = self.lineage(digest)
        except (OSError, ValueError):
            record = None
        rerun = "re-run the step that produced it"
        if record is not None:
            config = self._config_hint or "<config.yaml>"
            rerun = (
                f"re-run step {record.producer.step}, which produced "
                f"{record.ref.kind}:{record.ref.id} "
                f"(agentskiller run --config {config} --step {record.producer.step})"
            )
        return f"artifact object {path} is corrupt: {problem}; {rerun} to rewrite it"

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


def _read_if_present(path: StorePath) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
    return f"{loc}: {error['msg']}"

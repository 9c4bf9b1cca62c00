"""Typed artifacts with content hashes, producer records and parent references.

Every step output is an `Artifact[PayloadT]`. Its `content_hash` covers kind, id,
schema version, payload and parents, never run ids or clocks, so the same inputs
give the same hash on any machine. Run-specific provenance (Prefect flow and task
run ids) lives in `RunStamp`, stored beside the artifact in its lineage record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    ValidationInfo,
    model_validator,
)

from schemas.base import SCHEMA_VERSION, Frozen, Sha256, stable_hash

PayloadT = TypeVar("PayloadT", bound=BaseModel)

ArtifactKind = Literal[
    "seed_domains",
    "domain_batch",
    "domain",
    "domain_topics",
    "entity_batch",
    "entity",
    "entity_catalogue",
    "relation_batch",
    "entity_graph",
    "blueprint_outline_set",
    "blueprint_detail",
    "blueprint",
    "blueprint_set",
    "tool_list",
    "data_table",
    "table_constraints",
    "table_summary",
    "policy",
    "tool_graph",
    "mcp_server",
    "server_build",
    "server_build_record",
    "task_template",
    "task_template_set",
    "server_combination",
    "merged_policy",
    "fused_trajectory",
    "fused_trajectory_set",
    "fused_environment",
    "instance_selection",
    "instance_combination",
    "agent_task",
    "user_query",
    "query_set",
    "task_filter_report",
    "task_template",
    "task_template_set",
    "combination_selection",
    "rollout",
    "rollout_set",
    "task_assertions",
    "evaluation_result",
    "evaluation_summary",
]


_object_id = id  # `build` has a parameter named `id`

HASHED_FIELDS = ("kind", "id", "schema_version", "payload", "parents")
"""The fields of an artifact its content hash covers (JSON form)."""

_BUILT = "agentskiller.artifact.built"
"""Validation-context key by which `Artifact.build` hands over the (payload, hash)
it has just computed, so the hash is not computed twice for one artifact."""


def content_hash_of(data: Mapping[str, Any]) -> str:
    """The content hash of an artifact given as JSON data, e.g. a stored object.

    Raises:
        KeyError: If `data` lacks one of `HASHED_FIELDS`.
    """
    return stable_hash({name: data[name] for name in HASHED_FIELDS})


class ArtifactRef(Frozen):
    """Pointer to one artifact version."""

    kind: ArtifactKind
    id: str
    content_hash: Sha256


class Producer(Frozen):
    """Deterministic record of what produced an artifact (part of its identity)."""

    step: str
    item_key: str
    model_id: str | None = None
    prompt_id: str | None = None
    prompt_hash: str | None = None
    seed: int | None = None
    params_hash: str
    code_version: str


class RunStamp(Frozen):
    """Run-specific provenance; kept out of the content hash on purpose."""

    flow_run_id: str | None = None
    task_run_id: str | None = None
    cached: bool = False
    worker: str | None = Field(
        default=None,
        description="The work-pool worker that ran the item (None: the run's own "
        "process).",
    )


class Artifact(Frozen, Generic[PayloadT]):
    """One typed, immutable step output.

    Build with `Artifact.build(...)`, which computes the content hash; a hand-made
    hash that does not match is rejected.
    """

    kind: ArtifactKind
    id: str = Field(min_length=1, max_length=200)
    schema_version: int = SCHEMA_VERSION
    payload: PayloadT
    parents: tuple[ArtifactRef, ...] = ()
    producer: Producer
    content_hash: Sha256

    @staticmethod
    def compute_hash(
        kind: str,
        id: str,
        schema_version: int,
        payload: BaseModel,
        parents: tuple[ArtifactRef, ...],
    ) -> str:
        return content_hash_of(
            {
                "kind": kind,
                "id": id,
                "schema_version": schema_version,
                "payload": payload.model_dump(mode="json"),
                "parents": [p.model_dump(mode="json") for p in parents],
            }
        )

    @model_validator(mode="wrap")
    @classmethod
    def _hash_matches(
        cls,
        data: Any,
        handler: ModelWrapValidatorHandler[Artifact[Any]],
        info: ValidationInfo,
    ) -> Artifact[Any]:
        made = handler(data)
        if made is data:
            # An artifact handed on as it is (into an `ItemOutcome`, say): its hash
            # was checked when it was built or read, and it is frozen.
            return made
        built = (info.context or {}).get(_BUILT)
        if built is not None and built == (id(made.payload), made.content_hash):
            return made  # `build` hashed this very payload object a moment ago
        expected = made.compute_hash(
            made.kind, made.id, made.schema_version, made.payload, made.parents
        )
        if made.content_hash != expected:
            raise ValueError(
                f"artifact {made.kind}:{made.id} content_hash "
                f"{made.content_hash[:12]}… "
                f"does not match its content ({expected[:12]}…)"
            )
        return made

    @classmethod
    def build(
        cls,
        *,
        kind: ArtifactKind,
        id: str,
        payload: PayloadT,
        producer: Producer,
        parents: tuple[ArtifactRef, ...] | list[ArtifactRef] = (),
    ) -> Artifact[PayloadT]:
        parents_t = tuple(parents)
        digest = cls.compute_hash(kind, id, SCHEMA_VERSION, payload, parents_t)
        fields = {
            "kind": kind,
            "id": id,
            "payload": payload,
            "parents": parents_t,
            "producer": producer,
            "content_hash": digest,
        }
        return cls.model_validate(
            fields, context={_BUILT: (_object_id(payload), digest)}
        )

    @property
    def ref(self) -> ArtifactRef:
        return ArtifactRef(kind=self.kind, id=self.id, content_hash=self.content_hash)


FailureReason = Literal[
    "invalid_output",  # the model never produced output that validates
    "truncated",  # the answer was cut off at max_tokens (not re-asked)
    "llm_timeout",  # the endpoint did not answer within llm.timeout_s
    "llm_unreachable",  # no connection (refused, unknown host, connect timeout)
    "llm_http_error",  # the endpoint answered an HTTP error status
    "llm_rate_limited",  # HTTP 429 outlasted the retry budget
    "llm_unavailable",  # an endpoint failure of no finer kind (and older records)
    "cassette_miss",  # replay mode had no recorded answer for the call key
    "validation_failed",  # a deterministic check rejected the item after repair
    "dependency_failed",  # an input this item needs failed upstream
    "rejected_by_judge",  # an LLM judge scored the output under its threshold
    "machinery_error",  # the pipeline's own machinery (sandbox, harness) failed
    "worker_lost",  # the work-pool worker running the item crashed or vanished
    "error",  # an unexpected exception inside the item (a bug): message kept
]

MODEL_OUTPUT_REASONS: frozenset[str] = frozenset(
    {"invalid_output", "truncated", "rejected_by_judge"}
)
"""Failures of the model's answers: `--retry-failed` asks again for these."""

BLOCKING_REASONS: frozenset[str] = frozenset(
    {
        "llm_timeout",
        "llm_unreachable",
        "llm_http_error",
        "llm_rate_limited",
        "llm_unavailable",
        "cassette_miss",
        "error",
    }
)
"""Failures that stop the step: the item is missing for a reason other than its
content, so finishing the step without it would hide the problem."""


class FailedItem(Frozen):
    """An item of work that did not produce an artifact, with a typed reason.

    `retryable` says whether running the same command again may fix it (an endpoint
    that was down, a timeout); `blocking` whether the step stops because of it.
    A bug (`error`) or a refused request (`llm_http_error` 4xx) blocks, but is not
    retryable: a re-run alone would fail the same way.
    """

    step: str
    item_key: str
    reason: FailureReason
    message: str
    details: tuple[str, ...] = ()
    retryable: bool = False

    @property
    def blocking(self) -> bool:
        return self.retryable or self.reason in BLOCKING_REASONS


class ItemOutcome(Frozen, Generic[PayloadT]):
    """What one Prefect task returns: artifacts, or a typed failure (never None)."""

    item_key: str
    artifacts: tuple[Artifact[PayloadT], ...] = ()
    failure: FailedItem | None = None
    llm_calls: int = 0

    @property
    def ok(self) -> bool:
        return self.failure is None


class LineageRecord(Frozen):
    """One per artifact version: where it came from, and the run that made it."""

    ref: ArtifactRef
    parents: tuple[ArtifactRef, ...]
    producer: Producer
    run: RunStamp
    exports: tuple[str, ...] = ()


class StepManifest(Frozen):
    """The current outcome of one step in an output directory.

    `output_id` is the random id of the output location that wrote it (the store
    stamps it), so a manifest copied in from elsewhere is recognised as foreign.
    """

    step: str
    config_hash: str
    output_id: str | None = None
    outputs: tuple[ArtifactRef, ...]
    failed: tuple[FailedItem, ...] = ()
    exports: dict[str, ArtifactRef] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)


class LLMChoice(Frozen):
    """The model access one work item uses: role, model and the settings that
    shape answers (attempts, token limit, temperature)."""

    role: str
    model: str | None = None
    model_id: str
    settings: dict[str, Any] = Field(default_factory=dict)


InputHashes = str | tuple[str, ...]


class WorkItem(Frozen):
    """One unit of work, and everything its task reads; its hash is the cache key.

    A task receives only its work item and a small run reference: its named input
    artifacts (`inputs`: one content hash, or a tuple of them, per task argument),
    the JSON parameter slice it reads (`params`: step config, seed, simulation
    time, values), its model access (`llm`) with the hashes of the prompts it may
    render, the task that runs it (`task`, "module:function") and that module's
    code version. Clients, stores and run ids are deliberately absent.
    """

    step: str
    item_key: str
    task: str
    inputs: dict[str, InputHashes] = Field(default_factory=dict)
    params: dict[str, Any] = Field(default_factory=dict)
    llm: LLMChoice | None = None
    models: dict[str, LLMChoice] = Field(
        default_factory=dict,
        description="Further model access by name (a second role, e.g. triage).",
    )
    prompt_hashes: dict[str, str] = Field(default_factory=dict)
    code_version: str

    @property
    def cache_key(self) -> str:
        return stable_hash(self)

    @property
    def params_hash(self) -> str:
        return stable_hash(self.params)

    @property
    def model_id(self) -> str | None:
        return self.llm.model_id if self.llm is not None else None

    @property
    def label(self) -> str:
        """Task-run name in the Prefect UI: step, function and item."""
        return f"{self.step}-{self.task.rpartition(':')[2]}-{self.item_key}"

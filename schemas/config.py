"""Pipeline configuration: the typed form of `config.yaml` / `configs/demo.yaml`.

Every key is declared; unknown keys and wrong types are rejected (`extra="forbid"`),
so a typo fails before any work starts. Secrets are never here: a role names the
environment variable that holds its API key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from schemas.base import Frozen, Slug

SEED_DOMAINS_REFERENCE: tuple[str, ...] = (
    "healthcare",
    "finance",
    "education",
    "e_commerce",
    "travel",
    "real_estate",
    "legal",
    "manufacturing",
    "agriculture",
    "entertainment",
    "sports",
    "government",
    "non_profit",
    "research",
    "media",
)

RoleName = Literal["textual", "coding", "assistant", "user_simulator"]
"""`textual` and `coding` answer the synthesis steps (both required); rollouts
talk through `assistant` (the agent under test) and `user_simulator` (the
persona), each configured only when rollouts use a model for it."""


class ModelRole(Frozen):
    """One OpenAI-compatible endpoint and model for a role."""

    model: str = Field(min_length=1)
    base_url: str | None = Field(
        default=None,
        description="Endpoint root such as http://127.0.0.1:8000/v1; None means "
        "the value of the environment variable named by base_url_env, else OpenAI.",
    )
    base_url_env: str = "OPENAI_BASE_URL"
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    input_cost_per_mtok: float = Field(
        default=0.0, ge=0, description="USD per million prompt tokens (cost reports)."
    )
    output_cost_per_mtok: float = Field(
        default=0.0, ge=0, description="USD per million completion tokens."
    )

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """What these tokens cost at this role's prices."""
        return (
            prompt_tokens * self.input_cost_per_mtok
            + completion_tokens * self.output_cost_per_mtok
        ) / 1_000_000


class LLMConfig(Frozen):
    mode: Literal["live", "record", "replay"] = "live"
    cassette: str | None = Field(
        default=None,
        description="Cassette file (replay: read; record: written). Relative to the "
        "config file.",
    )
    replay_latency_s: float = Field(default=0.0, ge=0)
    timeout_s: float = Field(default=600.0, gt=0)
    transport_retries: int = Field(default=3, ge=0, le=20)
    retry_backoff_s: float = Field(default=2.0, ge=0)
    retry_backoff_max_s: float = Field(default=60.0, ge=0)
    validation_retries: int = Field(
        default=3, ge=1, le=10, description="Total attempts instructor makes per call."
    )
    max_concurrency: int = Field(
        default=16, ge=1, le=512, description="Model calls in flight at once."
    )
    prompt_overrides: str | None = Field(
        default=None,
        description="Directory whose <stage>/<name>.md.j2 files replace packaged "
        "prompts. Relative to the config file.",
    )
    roles: dict[RoleName, ModelRole]

    @model_validator(mode="after")
    def _roles_and_cassette(self) -> LLMConfig:
        missing = {"textual", "coding"} - set(self.roles)
        if missing:
            raise ValueError(
                f"llm.roles is missing role(s): {', '.join(sorted(missing))}"
            )
        if self.mode in ("record", "replay") and not self.cassette:
            raise ValueError(f"llm.cassette is required when llm.mode is {self.mode!r}")
        return self


class EmbeddingConfig(Frozen):
    provider: Literal["wordllama", "openai"] = "wordllama"
    model: str | None = Field(
        default=None, description="OpenAI embedding model name (provider: openai)."
    )
    base_url_env: str = "OPENAI_BASE_URL"
    api_key_env: str = "OPENAI_API_KEY"


class StepModel(Frozen):
    """Per-step model choice: which role, and optionally another model name on it."""

    role: RoleName = "textual"
    model: str | None = Field(
        default=None, description="Overrides the role's model for this step only."
    )


class DomainExpansionConfig(StepModel):
    seed_domains: tuple[Slug, ...] = SEED_DOMAINS_REFERENCE
    target_domain_number: int = Field(default=300, ge=1)
    expansion_batch_size: int = Field(default=20, ge=1, le=200)
    max_iterations: int = Field(
        default=40,
        ge=1,
        description="Hard cap on expansion calls (the original had none).",
    )
    similarity_threshold: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Cosine similarity at or above which a candidate is a "
        "near-duplicate.",
    )
    context_limit: int = Field(
        default=400,
        ge=1,
        description="At most this many accepted domains are listed in one prompt.",
    )


class EntityExtractionConfig(StepModel):
    domains_per_batch: int = Field(default=25, ge=1)
    entities_per_domain: int = Field(default=5, ge=1)


class EntityGraphConfig(StepModel):
    relation_batch_size: int = Field(default=10, ge=1)


class BlueprintConfig(StepModel):
    target_blueprints_per_entity: int = Field(default=10, ge=1)
    max_peripheral_entities: int = Field(default=3, ge=1)
    min_functions_per_blueprint: int = Field(default=10, ge=1)
    max_relationships_per_blueprint: int = Field(default=3, ge=1)
    max_feedback_attempts: int = Field(
        default=2, ge=0, description="Re-asks after the first detail answer."
    )
    fixup: bool = Field(
        default=True,
        description="Give a blueprint that still fails validation one fix-up call.",
    )


class ToolListConfig(Frozen):
    pass


class DatabaseConfig(StepModel):
    """s06: generator scripts (coding role) plus constraint and summary calls."""

    role: RoleName = "coding"
    analysis_role: RoleName = Field(
        default="textual", description="Role of the constraint and summary calls."
    )
    entities_per_table: int = Field(default=300, ge=1, description="Rows per table.")
    max_code_fix_retries: int = Field(
        default=3, ge=0, description="Repair rounds per script after its first run."
    )
    script_timeout_s: float = Field(default=120.0, gt=0)
    script_memory_mb: int = Field(default=1024, ge=64)


class PolicyConfig(StepModel):
    """s07: one policy per server, validated, then audited."""

    enable_validation: bool = Field(
        default=True, description="Run the auditor pass and re-validate its edits."
    )
    max_audit_rounds: int = Field(default=2, ge=0)


class ToolGraphConfig(StepModel):
    """s08: tool dependency graph, preconditions and trajectories."""

    min_trajectory_length: int = Field(default=2, ge=1)
    max_trajectory_length: int = Field(default=5, ge=1)
    max_trajectories_per_server: int | None = Field(default=500, ge=1)

    @model_validator(mode="after")
    def _lengths(self) -> ToolGraphConfig:
        if self.min_trajectory_length > self.max_trajectory_length:
            raise ValueError(
                "min_trajectory_length must not exceed max_trajectory_length"
            )
        return self


class ServerConfig(StepModel):
    """s09: tool modules written against the runtime, with test-driven repair."""

    role: RoleName = "coding"
    triage_role: RoleName = Field(
        default="coding", description="Role of the failure-triage call."
    )
    max_fix_attempts: int = Field(
        default=5, ge=0, description="Repair rounds per server after the first run."
    )
    max_syntax_retries: int = Field(default=5, ge=0)
    test_timeout_s: float = Field(default=120.0, gt=0)
    conformance_samples: int = Field(
        default=3, ge=1, description="Valid calls per tool in the conformance suite."
    )


class CombinationConfig(Frozen):
    """s10: choose server combinations (no model call): candidates share a core
    person entity or linked entities; scored by shared entities and embedding
    similarity (related, not near-duplicates); selected deterministically."""

    combinations: int = Field(
        default=400, ge=1, description="How many combinations to choose."
    )
    min_shared_entities: int = Field(
        default=1, ge=1, description="Entities every member must share (core counts)."
    )
    max_domains_per_combo: int = Field(
        default=3, ge=2, description="Most servers in one combination."
    )
    max_similarity: float = Field(
        default=0.97,
        gt=0,
        le=1,
        description="Members more similar than this (cosine of their embeddings) "
        "are near-duplicates, not a combination.",
    )
    similarity_weight: float = Field(
        default=1.0, ge=0, description="Weight of embedding relatedness in the score."
    )
    shared_entity_weight: float = Field(
        default=1.0, ge=0, description="Weight of the shared-entity count."
    )


class TrajectoryFusionConfig(StepModel):
    """s11: fuse one validated trajectory per member into cross-domain tasks."""

    trajectories_per_combo: int = Field(default=5, ge=1)


class DatabaseFusionConfig(Frozen):
    """s12: fused databases with one namespace per member server (no model)."""


class PolicyMergeConfig(StepModel):
    """s13: one merged policy per combination, with bridge rules."""

    max_audit_rounds: int = Field(default=1, ge=0)


class TemplateConfig(StepModel):
    """s14: task templates from trajectories, judged by an LLM judge."""

    enable_judge: bool = True
    judge_threshold: float = Field(default=3.0, ge=1, le=5)
    judge_role: RoleName = "textual"
    min_trajectory_length: int = Field(default=2, ge=1)
    max_trajectory_length: int = Field(default=5, ge=1)
    max_templates_per_server: int | None = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _lengths(self) -> TemplateConfig:
        if self.min_trajectory_length > self.max_trajectory_length:
            raise ValueError(
                "min_trajectory_length must not exceed max_trajectory_length"
            )
        return self


class InstanceConfig(StepModel):
    """s15: entity-instance combinations by a typed plan and sandboxed selection
    (single-domain) or creation (cross-domain) code."""

    role: RoleName = "coding"
    plan_role: RoleName = "textual"
    samples_per_template: int = Field(default=3, ge=1)
    max_code_retries: int = Field(default=3, ge=0)
    code_timeout_s: float = Field(default=60.0, gt=0)
    min_progress_rate: float = Field(default=0.2, ge=0, le=1)
    max_rounds: int = Field(default=3, ge=1)


class TaskFilterConfig(Frozen):
    """s16: execute every golden trajectory against its real environment."""

    max_combos_per_trajectory: int = Field(default=5, ge=1)
    call_timeout_s: float = Field(default=30.0, gt=0)


class QueryConfig(StepModel):
    """s17: instantiate validated tasks into user queries, checked for
    hallucinated and missing values."""

    max_attempts: int = Field(default=3, ge=1)


AssistantKind = Literal["model", "oracle", "do_nothing", "wrong_argument"]
"""Who answers as the assistant: the configured model, or a built-in reference
agent that checks the checkers (the golden calls; no call at all; the golden calls
with one wrong argument)."""
UserKind = Literal["model", "scripted"]


class RolloutConfig(Frozen):
    """r01: conversations between a simulated user and an assistant, with the
    assistant's tool calls run against a fresh session of the query's
    environment."""

    enabled: bool = Field(
        default=False,
        description="`agentskiller run` also runs rollouts and evaluation (r01, "
        "r02) after the task steps; `agentskiller rollout` / `evaluate` run them "
        "either way.",
    )
    trials: int = Field(default=1, ge=1, le=64, description="k: trials per query.")
    max_turns: int = Field(default=20, ge=1)
    max_steps_per_turn: int = Field(
        default=10,
        ge=1,
        description="Assistant calls per turn before the user is asked.",
    )
    assistant: AssistantKind = "model"
    assistant_role: RoleName = "assistant"
    assistant_model: str | None = None
    user: UserKind = "model"
    user_role: RoleName = "user_simulator"
    user_model: str | None = None
    environments: tuple[str, ...] = Field(
        default=(), description="Only these environments' queries (empty: all)."
    )
    max_queries: int | None = Field(
        default=None, ge=1, description="At most this many queries (sorted by id)."
    )
    tool_timeout_s: float = Field(default=30.0, gt=0)


class EvaluationConfig(StepModel):
    """r02: score every rollout. Actions and the final state are checked
    deterministically; the NL assertions (written once per task) and the rubric
    review are LLM judges on this step's role."""

    ordered_actions: bool = Field(
        default=False, description="Golden calls must also happen in their order."
    )
    nl_assertions: bool = True
    subjective: bool = True
    judge_attempts: int = Field(default=2, ge=1, description="Attempts per judge call.")
    rollout_files: tuple[str, ...] = Field(
        default=(),
        description="More rollout JSONL files to evaluate (your own harness's, in "
        "the rollout record format), relative to the output location or absolute; "
        "r01's own files are always evaluated.",
    )


class StepsConfig(Frozen):
    s01_domain_expansion: DomainExpansionConfig = DomainExpansionConfig()
    s02_entity_extraction: EntityExtractionConfig = EntityExtractionConfig()
    s03_entity_graph: EntityGraphConfig = EntityGraphConfig()
    s04_blueprint_generation: BlueprintConfig = BlueprintConfig()
    s05_tool_list_formulation: ToolListConfig = ToolListConfig()
    s06_database_generation: DatabaseConfig = DatabaseConfig()
    s07_policy_generation: PolicyConfig = PolicyConfig()
    s08_tool_graph_generation: ToolGraphConfig = ToolGraphConfig()
    s09_mcp_server_implementation: ServerConfig = ServerConfig()
    s10_combination_selection: CombinationConfig = CombinationConfig()
    s11_trajectory_fusion: TrajectoryFusionConfig = TrajectoryFusionConfig()
    s12_database_fusion: DatabaseFusionConfig = DatabaseFusionConfig()
    s13_policy_merge: PolicyMergeConfig = PolicyMergeConfig()
    s14_task_templates: TemplateConfig = TemplateConfig()
    s15_instance_combinations: InstanceConfig = InstanceConfig()
    s16_task_filtering: TaskFilterConfig = TaskFilterConfig()
    s17_query_generation: QueryConfig = QueryConfig()
    r01_rollouts: RolloutConfig = RolloutConfig()
    r02_evaluation: EvaluationConfig = EvaluationConfig()


_NOT_IN_PREFECT_NAMES = "/%&<>"
"""Characters Prefect refuses in work pool, flow and deployment names."""


def _prefect_name(value: str, what: str) -> str:
    bad = sorted({c for c in value if c in _NOT_IN_PREFECT_NAMES})
    if not value.strip() or bad:
        shown = " ".join(bad) if bad else "only blanks"
        raise ValueError(f"{what} {value!r} is not a name Prefect accepts ({shown})")
    return value


class WorkPoolConfig(Frozen):
    """How a run fans its items out to a Prefect work pool (`run.executor:
    work_pool`): batches of items become runs of the item-batch deployment, which
    the pool's workers pick up."""

    name: str = Field(
        default="agentskiller",
        description="The work pool (`prefect work-pool create NAME --type process`).",
    )
    deployment: str = Field(
        default="agentskiller-items/items",
        description="The item-batch deployment as flow-name/deployment-name "
        "(prefect.yaml deploys it as agentskiller-items/items).",
    )
    batch_size: int = Field(
        default=8,
        ge=1,
        le=500,
        description="Items per deployment run: bigger batches pay a worker's "
        "process start-up less often, smaller ones spread better over workers.",
    )
    start_timeout_s: float = Field(
        default=600.0,
        gt=0,
        description="How long a batch may wait for a worker to pick it up.",
    )
    timeout_s: float = Field(
        default=3600.0,
        gt=0,
        description="How long a batch may run once a worker started it; after "
        "that its worker counts as lost.",
    )
    batch_retries: int = Field(
        default=1,
        ge=0,
        le=10,
        description="Times a batch whose run crashed or whose worker was lost is "
        "submitted again; items still missing after that are failed items "
        "(reason worker_lost).",
    )
    poll_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often batch states are read."
    )
    heartbeat_s: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="How often a running batch tells the orchestrator (a Prefect "
        "event) that its worker is alive.",
    )
    lost_after_s: float = Field(
        default=120.0,
        gt=0,
        description="A running batch whose worker sent no heartbeat for this long "
        "counts as lost (a machine or worker that died): it is marked crashed and "
        "its unfinished items are resubmitted. At least twice heartbeat_s.",
    )

    @model_validator(mode="after")
    def _silence_outlasts_beats(self) -> WorkPoolConfig:
        if self.lost_after_s < 2 * self.heartbeat_s:
            raise ValueError(
                f"lost_after_s ({self.lost_after_s:g}) must be at least twice "
                f"heartbeat_s ({self.heartbeat_s:g}), or a live worker could "
                "count as lost"
            )
        return self

    @field_validator("name")
    @classmethod
    def _pool_name(cls, value: str) -> str:
        return _prefect_name(value, "work pool name")

    @field_validator("deployment")
    @classmethod
    def _deployment_name(cls, value: str) -> str:
        flow_name, slash, deployment = value.partition("/")
        if not slash:
            raise ValueError(
                f"deployment {value!r} must be flow-name/deployment-name, e.g. "
                "agentskiller-items/items"
            )
        _prefect_name(flow_name, "flow name")
        _prefect_name(deployment, "deployment name")
        return value


class RunConfig(Frozen):
    name: str = Field(default="agentskiller", pattern=r"^[a-z0-9][a-z0-9-]*$")
    seed: int = 7
    simulation_time: str = "2025-01-23T15:00:00-05:00"
    output_dir: str = Field(
        default="outputs",
        description="Output location: a folder, or an fsspec URL such as "
        "s3://bucket/prefix (shared by every worker of a run).",
    )
    results_storage: str | None = Field(
        default=None,
        description="Prefect result storage: a path or fsspec URL. Default: "
        "<output_dir>/.agentskiller/prefect-results.",
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for URL locations (output_dir, "
        "results_storage), e.g. {endpoint_url: http://minio:9000}. Credentials "
        "belong in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not here.",
    )
    max_concurrency: int = Field(
        default=16, ge=1, le=512, description="Items of one step run at once."
    )
    task_mode: Literal["single", "cross_domain", "both"] = Field(
        default="both",
        description="Which agent tasks to make after the environments: single-"
        "domain, cross-domain (needs the single-domain task work done first), or "
        "both (single-domain first).",
    )
    executor: Literal["local", "work_pool"] = Field(
        default="local",
        description="local: items run in this process's task runner; work_pool: "
        "batches of items run as deployment runs on the work pool run.work_pool.",
    )
    work_pool: WorkPoolConfig = WorkPoolConfig()


class PipelineConfig(Frozen):
    """The whole configuration; the parameter of the pipeline flow."""

    run: RunConfig = RunConfig()
    llm: LLMConfig
    embeddings: EmbeddingConfig = EmbeddingConfig()
    steps: StepsConfig = StepsConfig()

"""Every literal path of the project: the output layout under one root.

Input: the output root (already resolved by the caller): a local folder or an
fsspec URL (`s3://bucket/prefix`, see `tasks.store.location`). Output:
`OutputLayout`, a frozen value whose properties name the user-facing export files
of the reference tool (`domain_topics.json`, `entities.json`,
`tool_lists/<Server>.json`, `database/outputs/...`, `mcp_servers/<Server>.py`, ...)
and the internal `.agentskiller/` tree (content-addressed objects, lineage records,
step manifests, ledgers, reports, LanceDB tables, Prefect results). This module is
the one authority on that layout: the runtime asks it where a server's data and
tool module are. No side effects: nothing is created here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tasks.store.location import RemotePath, StorePath, store_path

DEFAULT_OUTPUT_DIR = "outputs"
INTERNAL_DIR = ".agentskiller"
# Probe files and objects of the storage check (written and deleted at once).
WRITE_PROBE_PREFIX = ".agentskiller-write-probe-"

# User-facing exports at the root, as the original tool named them.
DOMAIN_TOPICS_RELPATH = "domain_topics.json"
ENTITIES_RELPATH = "entities.json"
ENTITY_GRAPH_RELPATH = "entity_graph.json"
BLUEPRINTS_RELPATH = "blueprints.json"


@dataclass(frozen=True)
class OutputLayout:
    """Paths inside one output directory.

    Attributes:
        root: The output directory (a path, or a `RemotePath` for a URL); every
            path below is inside it.
    """

    root: StorePath

    @classmethod
    def at(
        cls, location: str | Path, storage_options: Mapping[str, Any] | None = None
    ) -> OutputLayout:
        """The layout at a path or fsspec URL (storage options apply to a URL)."""
        return cls(store_path(location, storage_options))

    @property
    def is_remote(self) -> bool:
        return isinstance(self.root, RemotePath)

    # User-facing exports, as the original tool laid them out.
    @property
    def domain_topics(self) -> StorePath:
        return self.root / DOMAIN_TOPICS_RELPATH

    @property
    def entities(self) -> StorePath:
        return self.root / ENTITIES_RELPATH

    @property
    def entity_graph(self) -> StorePath:
        return self.root / ENTITY_GRAPH_RELPATH

    @property
    def blueprints(self) -> StorePath:
        return self.root / BLUEPRINTS_RELPATH

    @property
    def tool_lists_dir(self) -> StorePath:
        return self.root / "tool_lists"

    def tool_list(self, server: str) -> StorePath:
        """Tool list file of one server, `tool_lists/<server>.json`.

        Raises:
            ValueError: If `server` is not a plain file name.
        """
        return self.tool_lists_dir / f"{_plain_name(server)}.json"

    # Internal store.
    @property
    def internal(self) -> StorePath:
        return self.root / INTERNAL_DIR

    @property
    def objects_dir(self) -> StorePath:
        return self.internal / "objects"

    @property
    def lineage_dir(self) -> StorePath:
        return self.internal / "lineage"

    @property
    def steps_dir(self) -> StorePath:
        return self.internal / "steps"

    @property
    def ledger_dir(self) -> StorePath:
        return self.internal / "ledger"

    @property
    def reports_dir(self) -> StorePath:
        return self.internal / "reports"

    @property
    def lancedb_dir(self) -> StorePath:
        return self.internal / "lancedb"

    @property
    def prefect_results_dir(self) -> StorePath:
        return self.internal / "prefect-results"

    @property
    def run_lock(self) -> StorePath:
        """The exclusive lock a run holds on this output location."""
        return self.internal / "run.lock"

    @property
    def identity_file(self) -> StorePath:
        """The random id of this output location, written once at first use."""
        return self.internal / "output-id"

    @property
    def state_file(self) -> StorePath:
        return self.internal / "state.json"

    def object_path(self, content_hash: str) -> StorePath:
        """Content-addressed object file, `objects/<hash[:2]>/<hash>.json`."""
        digest = _plain_name(content_hash)
        return self.objects_dir / digest[:2] / f"{digest}.json"

    def lineage_path(self, content_hash: str) -> StorePath:
        """Lineage record file of one artifact version."""
        return self.lineage_dir / f"{_plain_name(content_hash)}.json"

    def manifest_path(self, step: str) -> StorePath:
        """Manifest file of one step, `steps/<step>.json`."""
        return self.steps_dir / f"{_plain_name(step)}.json"

    def ledger_path(self, run_id: str) -> StorePath:
        """Usage ledger (JSON lines, appended call by call) of one run."""
        return self.ledger_dir / f"{_plain_name(run_id)}.jsonl"

    def report_path(self, name: str) -> StorePath:
        """A report file, `reports/<name>` (name includes the extension)."""
        return self.reports_dir / _plain_name(name)

    def export_path(self, relpath: str) -> StorePath:
        """Absolute path of an export given relative to the root.

        Args:
            relpath: A relative POSIX path such as `tool_lists/Bank.json`.

        Raises:
            ValueError: If the path is absolute, empty, or leaves the root.
        """
        pure = PurePosixPath(relpath)
        if pure.is_absolute() or not pure.parts or ".." in pure.parts:
            raise ValueError(
                f"export path {relpath!r} must be relative to the output root "
                "and stay inside it"
            )
        return self.root.joinpath(*pure.parts)

    def mcp_server(self, server: str) -> StorePath:
        """The tool module of a server, `mcp_servers/<server>.py`."""
        return self.export_path(mcp_server_relpath(server))

    def relpath(self, p: Path | RemotePath) -> str:
        """POSIX path of `p` relative to the root (relative paths pass through).

        Raises:
            ValueError: If an absolute `p` is not inside the root.
        """
        if isinstance(self.root, RemotePath) or isinstance(p, RemotePath):
            if isinstance(p, RemotePath) and isinstance(self.root, RemotePath):
                return p.relative_to(self.root).as_posix()
            if not p.is_absolute():
                return PurePosixPath(*p.parts).as_posix()
            raise ValueError(f"{p} is not inside the output root {self.root}")
        if not p.is_absolute():
            return PurePosixPath(*p.parts).as_posix()
        for path, root in ((p, self.root), (p.resolve(), self.root.resolve())):
            if path.is_relative_to(root):
                return path.relative_to(root).as_posix()
        raise ValueError(f"{p} is not inside the output root {self.root}")


def _plain_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"{name!r} is not a plain file name")
    return name


# Relative paths of the per-server outputs of s06-s09, in the reference layout.
# Steps pass these to `ArtifactStore.write_export`; the runtime reads a server's
# data and tool module at the same places (`data_relpaths`).

DATABASE_DIR = "database/outputs"


def entity_data_relpath(entity: str) -> str:
    return f"{DATABASE_DIR}/entities/{_plain_name(entity)}.json"


def relationship_data_relpath(server: str, relationship: str) -> str:
    return (
        f"{DATABASE_DIR}/relationships/{_plain_name(server)}/"
        f"{_plain_name(relationship)}.json"
    )


def table_data_relpath(server: str, table: str, *, entity: bool) -> str:
    """Data file of one table a server serves: shared entity tables lie under
    `entities/`, the server's own relationship tables under its name."""
    if entity:
        return entity_data_relpath(table)
    return relationship_data_relpath(server, table)


def entity_script_relpath(entity: str) -> str:
    return f"database/scripts/entities/{_plain_name(entity)}.py"


def relationship_script_relpath(server: str, relationship: str) -> str:
    return (
        f"database/scripts/relationships/{_plain_name(server)}/"
        f"{_plain_name(relationship)}.py"
    )


def constraints_relpath(server: str, relationship: str) -> str:
    return (
        f"database/constraints/{_plain_name(server)}/{_plain_name(relationship)}.json"
    )


def entity_summary_relpath(entity: str) -> str:
    return f"database_summary/entities/{_plain_name(entity)}.md"


def relationship_summary_relpath(server: str, relationship: str) -> str:
    return (
        f"database_summary/relationships/{_plain_name(server)}/"
        f"{_plain_name(relationship)}.md"
    )


def policy_relpath(server: str) -> str:
    return f"policies/{_plain_name(server)}.md"


def tool_graph_relpath(server: str) -> str:
    return f"tool_graphs/{_plain_name(server)}.json"


def validated_tasks_relpath(environment: str) -> str:
    """s16's validated tasks of one server or fused environment."""
    return f"validated_tasks/{_plain_name(environment)}/validated_combos.json"


QUERIES_DIR = "queries"
QUERIES_GLOB = "*.jsonl"
"""The query files of every environment, `queries/*.jsonl` (one per environment)."""


def queries_relpath(environment: str) -> str:
    """s17's user queries of one server or fused environment (JSONL)."""
    return f"{QUERIES_DIR}/{_plain_name(environment)}.jsonl"


def task_templates_relpath(source: str) -> str:
    """s14's templates of one server (later also of a fused combination)."""
    return f"task_templates/{_plain_name(source)}.json"


def fused_trajectories_relpath(fused: str) -> str:
    """s11's fused trajectories (and pruned drafts) of one combination."""
    return f"cross_domain_combinations/{_plain_name(fused)}.json"


def fused_environment_relpath(fused: str) -> str:
    """s12's summary of one fused environment: members, core entity, table
    namespaces, agent tool names. The data stays in the members' files."""
    return f"{DATABASE_DIR}/fused/{_plain_name(fused)}.json"


def mcp_server_relpath(server: str) -> str:
    return f"mcp_servers/{_plain_name(server)}.py"


def unit_test_relpath(server: str) -> str:
    return f"unit_tests/test_{_plain_name(server)}.py"


def tool_list_relpath(server: str) -> str:
    return f"tool_lists/{_plain_name(server)}.json"


def combinations_relpath(server: str, trajectory_hash: str) -> str:
    """s15's kept combinations of one template."""
    return f"combinations/{_plain_name(server)}/{_plain_name(trajectory_hash)}.json"


def sampling_code_relpath(server: str, trajectory_hash: str) -> str:
    """s15's selection script that found a template's combinations."""
    return f"sampling_codes/{_plain_name(server)}/{_plain_name(trajectory_hash)}.py"


def creation_code_relpath(fused: str, trajectory_hash: str) -> str:
    """s15x's creation code that made a cross-domain template's combinations
    (the reference's `sampling_codes/<Fused>_creation/<hash>.py`)."""
    return (
        f"sampling_codes/{_plain_name(fused)}_creation/"
        f"{_plain_name(trajectory_hash)}.py"
    )


SKIPPED_TRAJECTORIES_RELPATH = "combinations/_skipped_trajectories.json"
SKIPPED_CROSS_TRAJECTORIES_RELPATH = (
    "combinations/_skipped_cross_domain_trajectories.json"
)
"""s15x's cross-domain templates left without combinations (s15's file is
rewritten by every s15 run, so the cross-domain pass keeps its own)."""


GLOBAL_RECORD_RELPATH = "mcp_global_record.json"
COMBINATIONS_RELPATH = "cross_domain_combinations/_combinations.json"
CANDIDATES_RELPATH = "cross_domain_combinations/_candidates.json"

# In the user's state folder (`tasks.settings.user_state_dir`), not in an output dir:
# where the most recent run wrote, so `agentskiller status` can find it.
LAST_RUN_FILE = "last-run.json"


ROLLOUTS_DIR = "rollouts"
ROLLOUTS_GLOB = "*.jsonl"
"""The rollout files of every environment, `rollouts/*.jsonl`."""


def rollouts_relpath(environment: str) -> str:
    """The rollouts of one environment's queries (JSONL, one line per trial)."""
    return f"{ROLLOUTS_DIR}/{_plain_name(environment)}.jsonl"


EVALUATION_DIR = "evaluation"
EVALUATION_RESULTS_RELPATH = f"{EVALUATION_DIR}/results.jsonl"
EVALUATION_SUMMARY_RELPATH = f"{EVALUATION_DIR}/summary.json"
EVALUATION_REPORT_RELPATH = f"{EVALUATION_DIR}/report.md"
EVALUATION_VIEWER_RELPATH = f"{EVALUATION_DIR}/viewer.html"
"""`agentskiller view`'s static HTML viewer of rollouts and verdicts."""


def evaluation_plot_relpath(name: str) -> str:
    """A PNG plot of the evaluation report, `evaluation/plots/<name>.png`."""
    return f"{EVALUATION_DIR}/plots/{_plain_name(name)}.png"


def evaluation_plot_link(name: str) -> str:
    """The link to a plot from the report (`EVALUATION_REPORT_RELPATH`)."""
    plot = PurePosixPath(evaluation_plot_relpath(name))
    return plot.relative_to(PurePosixPath(EVALUATION_REPORT_RELPATH).parent).as_posix()


def training_export_relpath(export_format: str) -> str:
    """One training export, `exports/<format>.jsonl` (`openai`, `trl`, `sharegpt`)."""
    return f"exports/{_plain_name(export_format)}.jsonl"

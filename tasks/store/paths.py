"""Every literal path of the project: the output layout under one root directory.

Input: the output root (already resolved by the caller). Output: `OutputLayout`, a
frozen value whose properties name the user-facing export files of the reference
tool (`domain_topics.json`, `entities.json`, `tool_lists/<Server>.json`, ...) and the
internal `.agentskiller/` tree (content-addressed objects, lineage records, step
manifests, ledgers, reports, LanceDB tables, Prefect results). No side effects:
nothing is created here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

DEFAULT_OUTPUT_DIR = "outputs"
INTERNAL_DIR = ".agentskiller"


@dataclass(frozen=True)
class OutputLayout:
    """Paths inside one output directory.

    Attributes:
        root: The output directory; every path below is inside it.
    """

    root: Path

    # User-facing exports, as the original tool laid them out.
    @property
    def domain_topics(self) -> Path:
        return self.root / "domain_topics.json"

    @property
    def entities(self) -> Path:
        return self.root / "entities.json"

    @property
    def entity_graph(self) -> Path:
        return self.root / "entity_graph.json"

    @property
    def blueprints(self) -> Path:
        return self.root / "blueprints.json"

    @property
    def tool_lists_dir(self) -> Path:
        return self.root / "tool_lists"

    def tool_list(self, server: str) -> Path:
        """Tool list file of one server, `tool_lists/<server>.json`.

        Raises:
            ValueError: If `server` is not a plain file name.
        """
        return self.tool_lists_dir / f"{_plain_name(server)}.json"

    # Internal store.
    @property
    def internal(self) -> Path:
        return self.root / INTERNAL_DIR

    @property
    def objects_dir(self) -> Path:
        return self.internal / "objects"

    @property
    def lineage_dir(self) -> Path:
        return self.internal / "lineage"

    @property
    def steps_dir(self) -> Path:
        return self.internal / "steps"

    @property
    def ledger_dir(self) -> Path:
        return self.internal / "ledger"

    @property
    def reports_dir(self) -> Path:
        return self.internal / "reports"

    @property
    def lancedb_dir(self) -> Path:
        return self.internal / "lancedb"

    @property
    def prefect_results_dir(self) -> Path:
        return self.internal / "prefect-results"

    @property
    def run_lock(self) -> Path:
        """The exclusive lock a run holds on this output location."""
        return self.internal / "run.lock"

    @property
    def identity_file(self) -> Path:
        """The random id of this output location, written once at first use."""
        return self.internal / "output-id"

    @property
    def state_file(self) -> Path:
        return self.internal / "state.json"

    def object_path(self, content_hash: str) -> Path:
        """Content-addressed object file, `objects/<hash[:2]>/<hash>.json`."""
        digest = _plain_name(content_hash)
        return self.objects_dir / digest[:2] / f"{digest}.json"

    def lineage_path(self, content_hash: str) -> Path:
        """Lineage record file of one artifact version."""
        return self.lineage_dir / f"{_plain_name(content_hash)}.json"

    def manifest_path(self, step: str) -> Path:
        """Manifest file of one step, `steps/<step>.json`."""
        return self.steps_dir / f"{_plain_name(step)}.json"

    def ledger_path(self, run_id: str) -> Path:
        """Usage ledger (JSON lines, appended call by call) of one run."""
        return self.ledger_dir / f"{_plain_name(run_id)}.jsonl"

    def report_path(self, name: str) -> Path:
        """A report file, `reports/<name>` (name includes the extension)."""
        return self.reports_dir / _plain_name(name)

    def export_path(self, relpath: str) -> Path:
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

    def relpath(self, p: Path) -> str:
        """POSIX path of `p` relative to the root (relative paths pass through).

        Raises:
            ValueError: If an absolute `p` is not inside the root.
        """
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
# Steps pass these to `ArtifactStore.write_export`.


def entity_data_relpath(entity: str) -> str:
    return f"database/outputs/entities/{_plain_name(entity)}.json"


def relationship_data_relpath(server: str, relationship: str) -> str:
    return (
        f"database/outputs/relationships/{_plain_name(server)}/"
        f"{_plain_name(relationship)}.json"
    )


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


def mcp_server_relpath(server: str) -> str:
    return f"mcp_servers/{_plain_name(server)}.py"


def unit_test_relpath(server: str) -> str:
    return f"unit_tests/test_{_plain_name(server)}.py"


def tool_list_relpath(server: str) -> str:
    return f"tool_lists/{_plain_name(server)}.json"


GLOBAL_RECORD_RELPATH = "mcp_global_record.json"

# In the user's state folder (`tasks.settings.user_state_dir`), not in an output dir:
# where the most recent run wrote, so `agentskiller status` can find it.
LAST_RUN_FILE = "last-run.json"

"""`agentskiller view`: the rollout viewer of an output directory, written or served.

Input: an output directory with `rollouts/*.jsonl`, and where present
`evaluation/results.jsonl`, `queries/*.jsonl` and the s16 tasks the queries name
(read from the artifact store, hash-checked). Output: the viewer page
(`tasks.core.viewer`); rollouts without a result show as "not evaluated", and
every line or task that could not be read is counted in the page by reason.
Side effects: `write_viewer` writes `evaluation/viewer.html` (or a chosen file);
`viewer_server` binds a local HTTP port that serves the page and nothing else.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from schemas.evaluation import EvaluationResult
from schemas.rollout import Rollout
from schemas.validated_task import AgentTask
from tasks.core.viewer import render_viewer
from tasks.rollout_files import read_all, read_queries, read_results, rollout_files
from tasks.store.artifacts import ArtifactStore, StoreError
from tasks.store.atomic import write_text_atomic
from tasks.store.location import StorePath
from tasks.store.paths import EVALUATION_VIEWER_RELPATH, ROLLOUTS_DIR, OutputLayout

VIEWER_PATHS = ("/", "/viewer.html")


class NoRollouts(LookupError):
    """The output directory holds no readable rollout."""


@dataclass(frozen=True)
class ViewerInputs:
    rollouts: tuple[Rollout, ...]
    results: tuple[EvaluationResult, ...]
    tasks_by_query: dict[str, AgentTask]
    skipped: dict[str, int] = field(default_factory=dict)


def load_viewer_inputs(layout: OutputLayout) -> ViewerInputs:
    """Read what the viewer shows from an output directory.

    Raises:
        NoRollouts: There is no rollout to show, naming the folder searched.
    """
    store = ArtifactStore(layout)
    files, _ = rollout_files(store)
    rollouts, cut = read_all(files)
    if not rollouts:
        lost = sum(cut.counts.values())
        raise NoRollouts(
            f"no readable rollouts in {layout.export_path(ROLLOUTS_DIR)}/*.jsonl "
            "(written by r01: agentskiller rollout --config ...)"
            + (f" ({lost} line(s) could not be read)" if lost else "")
        )
    results, bad_results = read_results(store)
    queries, bad_queries = read_queries(store)
    wanted = {r.id for r in rollouts}
    tasks: dict[str, AgentTask] = {}
    missing = 0
    for query in queries:
        if query.id not in wanted:
            continue
        try:
            tasks[query.id] = store.get(query.lineage.content_hash, AgentTask).payload
        except StoreError:
            missing += 1
    skipped = Counter(cut.counts)
    skipped.update({f"results {k}": v for k, v in bad_results.counts.items()})
    skipped.update({f"queries {k}": v for k, v in bad_queries.counts.items()})
    if missing:
        skipped["unreadable golden task"] = missing
    return ViewerInputs(
        rollouts=tuple(rollouts),
        results=tuple(results),
        tasks_by_query=tasks,
        skipped=dict(sorted(skipped.items())),
    )


def write_viewer(
    layout: OutputLayout, page: str, target: StorePath | None = None
) -> StorePath:
    """Write a viewer page (by default to `evaluation/viewer.html`)."""
    return write_text_atomic(
        target or layout.export_path(EVALUATION_VIEWER_RELPATH), page
    )


def viewer_page(layout: OutputLayout) -> str:
    """The viewer page of an output directory.

    Raises:
        NoRollouts: There is no rollout to show.
    """
    inputs = load_viewer_inputs(layout)
    return render_viewer(
        inputs.rollouts,
        inputs.results,
        inputs.tasks_by_query,
        skipped=inputs.skipped,
        title=f"Rollouts of {_root_name(layout)}",
    )


class _PageServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], page: bytes) -> None:
        super().__init__(address, _PageHandler)
        self.page = page


class _PageHandler(BaseHTTPRequestHandler):
    server: _PageServer

    def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
        if self.path.split("?", 1)[0] not in VIEWER_PATHS:
            self.send_error(HTTPStatus.NOT_FOUND, "only the viewer page is served")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.server.page)))
        self.end_headers()
        self.wfile.write(self.server.page)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the command prints its one URL line instead."""


def viewer_server(page: str, port: int, host: str = "127.0.0.1") -> _PageServer:
    """A bound (not yet serving) HTTP server for one page; port 0 picks a free one.

    Raises:
        OSError: The port cannot be bound.
    """
    return _PageServer((host, port), page.encode("utf-8"))


def _root_name(layout: OutputLayout) -> str:
    root = layout.root
    name = root.resolve().name if isinstance(root, Path) else root.name
    return name or str(root)

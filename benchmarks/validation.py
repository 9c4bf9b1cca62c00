"""Benchmark: s16's execution of golden trajectories (validated combinations/s).

It takes an output folder the demo world ran in (it runs the demo there first
when s16 has no outputs yet: `agentskiller run --config configs/demo.yaml`),
loads s15's combinations that s16 validated, and executes them the way s16 does
(`tasks.task_filtering`): each environment materialised from its artifacts,
started in the sandbox, served over in-memory MCP, one fresh session per
combination, which ends with its last call; environments run concurrently, one
thread each, as s16's items do.

Two measurements: the demo world's own combinations, and a synthetic set of at
least `--combinations` made by repeating them under new ids across the
environments. For each: validated combinations per second (wall), and the share
of each environment's time spent outside tool execution (tool execution = the
round trip of each golden call over MCP to the sandboxed worker; the rest is
start-up, materialising, binding, state and diff reads). The golden calls bring
the session's state back with their results (a write its state hash, the last
call the diff), so the worker's work for that state is inside those round trips;
the state read left is the starting hash, once per environment.

Workers start warm (`tasks.runtime.sandbox_warm`): the first worker of this
process also starts the template they are forked from (about 0.2 s, once per
process), so the set measured first pays it. `--sets synthetic` measures the
synthetic set alone, template start included; `AGENTSKILLER_WARM_START=0`
measures cold starts.

    python -m benchmarks.validation --output-dir /tmp/bench-demo --combinations 600

Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"


class TimedClient:
    """An MCP client whose tool calls are timed (everything else passes through):
    tool execution is the round trip of a golden call, over MCP to the sandboxed
    worker and back."""

    def __init__(self, client: Any, clock: dict[str, float]):
        self._client = client
        self._clock = clock

    async def call_tool(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self._client.call_tool(*args, **kwargs)
        finally:
            self._clock["tool_s"] += time.perf_counter() - started
            self._clock["calls"] += 1

    async def read_resource(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await self._client.read_resource(*args, **kwargs)
        finally:
            self._clock["state_s"] += time.perf_counter() - started

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def ensure_demo(out: Path) -> None:
    """Run the demo into `out` unless s16 has outputs there."""
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    if ArtifactStore(OutputLayout(out)).read_manifest("s16_task_filtering"):
        return
    agentskiller = Path(sys.executable).parent / "agentskiller"
    subprocess.run(
        [
            str(agentskiller),
            "run",
            "--config",
            str(DEMO_CONFIG),
            "--output-dir",
            str(out),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )


def load(out: Path) -> tuple[dict[str, list], dict[str, dict[str, Any]]]:
    """The validated combinations per environment, and each environment's
    artifacts (what s16's work item holds)."""
    from schemas.database import DataTable
    from schemas.server import McpServer
    from schemas.validated_task import AgentTask, InstanceCombination
    from tasks import inputs
    from tasks.core.server_tables import select_owned
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    store = ArtifactStore(OutputLayout(out))
    passed = {
        a.payload.combo_id
        for a in store.load_outputs("s16_task_filtering", AgentTask, kind="agent_task")
    }
    combos: dict[str, list] = {}
    for combo in store.load_outputs(
        "s15_instance_combinations", InstanceCombination, kind="instance_combination"
    ):
        if combo.payload.combo_id in passed:
            combos.setdefault(combo.payload.environment, []).append(combo)
    blueprints = {b.id: b for b in inputs.blueprints(store)}
    tables = store.load_outputs("s06_database_generation", DataTable, kind="data_table")
    servers = {
        s.id: s
        for s in store.load_outputs(
            "s09_mcp_server_implementation", McpServer, kind="mcp_server"
        )
    }
    catalogue = inputs.entity_catalogue(store)
    parts = {}
    for name in combos:
        owned, _ = select_owned(blueprints[name].payload, tables)
        parts[name] = {
            "blueprints": [blueprints[name]],
            "catalogue": catalogue,
            "tables": list(owned),
            "servers": [servers[name]],
        }
    return combos, parts


def synthetic(combos: dict[str, list], total: int) -> dict[str, list]:
    """At least `total` combinations: the validated ones repeated under new ids,
    round-robin over environments."""
    from schemas.artifact import Artifact

    flat = [c for name in sorted(combos) for c in combos[name]]
    made: dict[str, list] = {}
    for i in range(max(total, len(flat))):
        base = flat[i % len(flat)]
        payload = base.payload.model_copy(update={"combo_id": f"syn-{i:05d}"})
        copy = Artifact.build(
            kind="instance_combination",
            id=payload.combo_id,
            payload=payload,
            producer=base.producer,
        )
        made.setdefault(payload.environment, []).append(copy)
    return made


def run_set(
    combos: dict[str, list], parts: dict[str, dict[str, Any]], work: Path
) -> dict[str, float]:
    """Execute every environment's combinations concurrently; measurements."""
    import tempfile

    import anyio
    from mcp import Client

    from schemas.config import TaskFilterConfig
    from tasks.environment_build import materialize_environment
    from tasks.runtime.golden_run import run_each
    from tasks.runtime.mcp_exposure import build_mcp_server
    from tasks.runtime.serve import open_environment

    cfg = TaskFilterConfig()

    def one(name: str) -> tuple[int, float, dict[str, float]]:
        """(validated, this environment's own wall seconds, its tool clock)."""
        began = time.perf_counter()
        clock = {"tool_s": 0.0, "calls": 0, "state_s": 0.0}
        folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
        materialize_environment(folder, **parts[name])
        plans = [
            (f"golden-{c.payload.combo_id}", c.payload.calls, c.payload.instances)
            for c in combos[name]
        ]
        with open_environment(folder, name, call_timeout_s=cfg.call_timeout_s) as env:

            async def main() -> list:
                async with Client(build_mcp_server(env)) as client:
                    return await run_each(TimedClient(client, clock), plans, end=True)

            runs = anyio.run(main)
        passed = sum(run.passed for run, _ in runs)
        return passed, time.perf_counter() - began, clock

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(combos)) as pool:
        done = list(pool.map(one, sorted(combos)))
    wall = time.perf_counter() - started
    passed = sum(d[0] for d in done)
    busy = sum(d[1] for d in done)
    tool = sum(d[2]["tool_s"] for d in done)
    state = sum(d[2]["state_s"] for d in done)
    total = sum(len(v) for v in combos.values())
    return {
        "combinations": total,
        "validated": passed,
        "environments": len(combos),
        "wall_s": round(wall, 3),
        "validated_per_s": round(passed / wall, 1),
        "tool_calls": int(sum(d[2]["calls"] for d in done)),
        "tool_execution_s": round(tool, 3),
        # each environment's own elapsed time (start-up included), summed over
        # environments; the share of it not spent answering tool calls
        "environment_s": round(busy, 3),
        "outside_tool_share": round(1 - tool / busy, 3),
        # state-hash and diff reads are MCP round trips to the environment too
        "state_read_s": round(state, 3),
        "outside_environment_share": round(1 - (tool + state) / busy, 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--combinations", type=int, default=600)
    parser.add_argument(
        "--sets",
        nargs="+",
        choices=("demo", "synthetic"),
        default=["demo", "synthetic"],
        help="which sets to measure, in this order (the first one to start a "
        "worker also starts the warm-start template of this process)",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    out = args.output_dir.resolve()
    ensure_demo(out)
    combos, parts = load(out)
    work = out / ".bench-validation"
    work.mkdir(exist_ok=True)
    sets = {"demo": combos, "synthetic": synthetic(combos, args.combinations)}
    rows = {name: run_set(sets[name], parts, work) for name in args.sets}
    for name, row in rows.items():
        print(name, json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

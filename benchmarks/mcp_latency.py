"""Benchmark: MCP `call_tool` latency (in-memory and over stdio) and `state_hash()`.

Serves one generated environment (default: the hand-written DentalAppointments
fixture; pass `--output-dir` and `--server` for a pipeline output) and measures a
read tool called N times through the official `mcp` client, in memory and through a
`python -m tasks.runtime.serve` child over stdio, reporting p50/p95/mean in ms. Then
builds a database of 300 rows per table from the environment's spec and times
`state_hash()`.

    python -m benchmarks.mcp_latency --calls 300
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "runtime" / "fixtures"
DEFAULT_OUTPUT = FIXTURE / "dental"


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(p95 * 1000, 3),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
    }


async def _time_calls(client: Any, tool: str, args: dict, calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        result = await client.call_tool(tool, args)
        samples.append(time.perf_counter() - started)
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")
    return samples


def _first_core_id(environment: Any) -> tuple[str, str]:
    spec = environment.spec
    auth = next(t for t in spec.tools if t.is_authorization)
    table = environment.base.table(spec.core_entity)
    return auth.name, str(table.all()[0][spec.core_key])


def run(output_dir: Path, server: str, tool: str, calls: int) -> dict[str, Any]:
    """Measure and return the numbers."""
    from mcp import Client, StdioServerParameters

    from tasks.runtime.database import Database
    from tasks.runtime.mcp_exposure import build_mcp_server
    from tasks.runtime.serve import load_environment

    environment = load_environment(output_dir, server)
    auth_tool, core_id = _first_core_id(environment)
    auth_args = {environment.spec.core_key: core_id}

    async def in_memory() -> list[float]:
        async with Client(build_mcp_server(environment)) as client:
            await client.call_tool(auth_tool, auth_args)
            return await _time_calls(client, tool, {}, calls)

    async def over_stdio() -> tuple[float, list[float]]:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "tasks.runtime.serve", server, "--output-dir", str(output_dir)],
        )
        started = time.perf_counter()
        async with Client(params) as client:
            await client.list_tools()
            spawn = time.perf_counter() - started
            await client.call_tool(auth_tool, auth_args)
            return spawn, await _time_calls(client, tool, {}, calls)

    memory = anyio.run(in_memory)
    spawn, stdio = anyio.run(over_stdio)

    rows = {
        name: [
            {**row, table.primary_key: f"{row[table.primary_key]}-{i}"}
            for i in range(300)
            for row in environment.base.table(name).all()[:1]
        ]
        for name, table in environment.spec.tables.items()
    }
    database = Database.from_rows(environment.spec, rows, strict=False)
    hashes = []
    for _ in range(50):
        started = time.perf_counter()
        database.state_hash()
        hashes.append(time.perf_counter() - started)
    return {
        "server": server,
        "tool": tool,
        "calls": calls,
        "in_memory": _stats(memory),
        "stdio": {**_stats(stdio), "spawn_and_initialize_ms": round(spawn * 1000, 1)},
        "state_hash_300_rows_per_table": {
            "tables": len(rows),
            "rows": sum(len(r) for r in rows.values()),
            **_stats(hashes),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--server", default="DentalAppointments")
    parser.add_argument("--tool", default="list_my_appointments")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    print(
        json.dumps(run(args.output_dir, args.server, args.tool, args.calls), indent=2)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

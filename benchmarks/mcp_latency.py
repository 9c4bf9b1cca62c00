"""Benchmark: MCP `call_tool` latency of the sandboxed serving path, and `state_hash()`.

Serves one generated environment (default: the hand-written DentalAppointments
fixture; pass `--output-dir` and `--server` for a pipeline output) and measures a
read tool called N times through the official `mcp` client: through the sandboxed
worker with an in-memory MCP client (the pipe's cost alone), and through a `python
-m tasks.runtime.serve` child over stdio and over streamable HTTP (both run the
tool module in the sandboxed worker), reporting p50/p95/mean in ms and the time to
spawn and initialise. `--in-process` adds the old unsandboxed in-memory baseline,
which imports the tool module into this process: use it only for trusted code such
as the fixture. Then builds a database of 300 rows per table from the spec and
times `state_hash()`. Side effects: starts server processes and sandboxed workers,
all stopped before it returns.

    python -m benchmarks.mcp_latency --calls 300 --in-process
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
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


def _first_core_id(spec: Any, output_dir: Path) -> tuple[str, str]:
    from tasks.runtime.database import Database

    auth = next(t for t in spec.tools if t.is_authorization)
    table = Database.load(spec, output_dir).table(spec.core_entity)
    return auth.name, str(table.all()[0][spec.core_key])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _await_port(port: int, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"the HTTP server did not listen on port {port}")


def run(
    output_dir: Path, server: str, tool: str, calls: int, in_process: bool = False
) -> dict[str, Any]:
    """Measure and return the numbers."""
    from mcp import Client, StdioServerParameters

    from tasks.runtime.database import Database
    from tasks.runtime.mcp_exposure import build_mcp_server
    from tasks.runtime.serve import load_environment, open_environment

    serve_args = ["-m", "tasks.runtime.serve", server, "--output-dir", str(output_dir)]
    results: dict[str, Any] = {"server": server, "tool": tool, "calls": calls}

    async def in_memory(environment: Any, auth: tuple[str, dict]) -> list[float]:
        async with Client(build_mcp_server(environment)) as client:
            await client.call_tool(*auth)
            return await _time_calls(client, tool, {}, calls)

    async def connected(target: Any, auth: tuple[str, dict]) -> tuple[float, list]:
        started = time.perf_counter()
        async with Client(target) as client:
            await client.list_tools()
            spawn = time.perf_counter() - started
            await client.call_tool(*auth)
            return spawn, await _time_calls(client, tool, {}, calls)

    started = time.perf_counter()
    with open_environment(output_dir, server) as sandboxed:
        worker_start = time.perf_counter() - started
        spec = sandboxed.spec
        auth_tool, core_id = _first_core_id(spec, output_dir)
        auth = (auth_tool, {spec.core_key: core_id})
        samples = anyio.run(in_memory, sandboxed, auth)
    results["sandboxed_worker_in_memory_client"] = {
        **_stats(samples),
        "worker_start_ms": round(worker_start * 1000, 1),
    }
    if in_process:
        samples = anyio.run(in_memory, load_environment(output_dir, server), auth)
        results["unsandboxed_in_memory"] = _stats(samples)

    stdio = StdioServerParameters(command=sys.executable, args=serve_args)
    spawn, samples = anyio.run(connected, stdio, auth)
    results["stdio"] = {
        **_stats(samples),
        "spawn_and_initialize_ms": round(spawn * 1000, 1),
    }

    port = _free_port()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *serve_args, "--transport", "http", "--port", str(port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        _await_port(port)
        listening = time.perf_counter() - started
        url = f"http://127.0.0.1:{port}/mcp"
        _, samples = anyio.run(connected, url, auth)
    finally:
        process.kill()
        process.wait()
    results["http"] = {**_stats(samples), "start_ms": round(listening * 1000, 1)}

    base = Database.load(spec, output_dir)
    rows = {
        name: [
            {**row, table.primary_key: f"{row[table.primary_key]}-{i}"}
            for i in range(300)
            for row in base.table(name).all()[:1]
        ]
        for name, table in spec.tables.items()
    }
    database = Database.from_rows(spec, rows, strict=False)
    hashes = []
    for _ in range(50):
        started = time.perf_counter()
        database.state_hash()
        hashes.append(time.perf_counter() - started)
    results["state_hash_300_rows_per_table"] = {
        "tables": len(rows),
        "rows": sum(len(r) for r in rows.values()),
        **_stats(hashes),
    }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--server", default="DentalAppointments")
    parser.add_argument("--tool", default="list_my_appointments")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="also measure the unsandboxed in-memory baseline (imports the tool "
        "module here: trusted code only)",
    )
    args = parser.parse_args(argv)
    numbers = run(args.output_dir, args.server, args.tool, args.calls, args.in_process)
    print(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

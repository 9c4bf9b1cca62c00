"""Benchmark: episode step latency over HTTP, as a trainer in another process
sees it.

It starts `agentskiller serve-episodes` on 127.0.0.1 for a demo output folder
(running the demo there first when it has no queries), then for each of
`--episodes` episodes: `POST /episodes` (a fresh session of the query's
environment), the task's golden calls as tool calls over MCP streamable HTTP at
the episode's `mcp_url` (one step = one `call_tool` round trip), a state read
(`GET /episodes/ID/state`) and `POST /episodes/ID/reward`. It prints the median
and 95th percentile of each kind of request. The environment processes start on
the first episode of each environment; that start is reported apart.

    python -m benchmarks.episode_latency --output-dir /tmp/bench-demo --episodes 40

Not part of the test run.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2

from benchmarks.validation import ensure_demo


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(url: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            httpx2.get(url, timeout=1.0)
            return
        except httpx2.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"serve-episodes did not answer at {url}")


def _golden(out: Path) -> dict[str, list[dict[str, Any]]]:
    from schemas.validated_task import AgentTask
    from tasks.rollout_files import read_queries
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    store = ArtifactStore(OutputLayout(out))
    queries, _ = read_queries(store)
    return {
        q.id: [
            {"tool": c.tool, "arguments": c.arguments}
            for c in store.get(q.lineage.content_hash, AgentTask).payload.golden_calls
        ]
        for q in queries
    }


async def _episode(
    base: str, query_id: str, calls: list[dict[str, Any]], times: dict[str, list]
) -> None:
    from mcp import Client

    async with httpx2.AsyncClient(base_url=base, timeout=60.0) as http:
        started = time.perf_counter()
        created = (await http.post("/episodes", json={"query_id": query_id})).json()
        times["start"].append(time.perf_counter() - started)
        async with Client(created["mcp_url"]) as client:
            for call in calls:
                started = time.perf_counter()
                await client.call_tool(call["tool"], call["arguments"])
                times["step"].append(time.perf_counter() - started)
        episode = created["episode_id"]
        started = time.perf_counter()
        (await http.get(f"/episodes/{episode}/state")).raise_for_status()
        times["state"].append(time.perf_counter() - started)
        started = time.perf_counter()
        reward = await http.post(
            f"/episodes/{episode}/reward", json={"messages": created["messages"]}
        )
        reward.raise_for_status()
        times["reward"].append(time.perf_counter() - started)
        await http.delete(f"/episodes/{episode}")


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--episodes", type=int, default=40)
    args = parser.parse_args(argv)
    ensure_demo(args.output_dir)
    golden = _golden(args.output_dir)
    port = _free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "agentskiller"),
            "serve-episodes",
            "--output-dir",
            str(args.output_dir),
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base + "/")
        ids = sorted(golden)
        warm: dict[str, list] = {"start": [], "step": [], "state": [], "reward": []}
        for query_id in ids:  # the first episode of each environment starts it
            anyio.run(_episode, base, query_id, golden[query_id], warm)
        times: dict[str, list] = {"start": [], "step": [], "state": [], "reward": []}
        for i in range(args.episodes):
            query_id = ids[i % len(ids)]
            anyio.run(_episode, base, query_id, golden[query_id], times)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"first episode per query (environment start included): {_ms(warm['start'])}")
    for kind in ("start", "step", "state", "reward"):
        print(f"{kind:6} ({len(times[kind])}): {_ms(times[kind])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

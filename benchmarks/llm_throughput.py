"""Benchmark: N independent structured LLM calls through Prefect + instructor + openai.

Each call is one cached Prefect task (the pipeline's own fan-out, result persistence
and cache-key machinery) whose body makes an instructor call over HTTP to the replay
server, which answers from a generated cassette after an injected latency L. With
concurrency C the ideal wall time is N*L/C; the report gives the measured wall time,
efficiency = ideal / wall, and the orchestration overhead per call.

    python -m benchmarks.llm_throughput --n 400 --latency 0.2 --concurrency 16

The replay server runs in its own process, as a model endpoint would. The Prefect
API is a temporary local server unless PREFECT_API_URL is set; its start
is not part of the measured time. A second pass over the same items measures the
cache-hit path (zero model calls).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

SCHEMA = "scripted benchmark answers (not real model output)"


class Verdict(BaseModel):
    """The benchmark's response model: small, with a validator-checked field."""

    label: str = Field(min_length=1)
    score: int = Field(ge=0, le=100)


def _write_cassette(path: Path, n: int) -> None:
    lines = [
        json.dumps(
            {
                "call_key": f"bench/item-{i:05d}",
                "attempt": 0,
                "answer": {"tool_arguments": {"label": f"item {i}", "score": i % 101}},
            }
        )
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _replay_server(cassette: Path, latency: float, *, separate: bool) -> Iterator[str]:
    """The replay server, in its own process (as a model endpoint would be) or in a
    thread of this one."""
    if not separate:
        from tasks.llm.replay_server import serve_cassette

        with serve_cassette(cassette, latency_s=latency) as server:
            server.start()
            yield server.url
        return
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tasks.llm.replay_server",
            "--cassette",
            str(cassette),
            "--port",
            "0",
            "--latency",
            str(latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if " at http" not in line:
            raise RuntimeError(f"replay server did not start: {line!r}")
        yield line.rsplit(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _config(url: str, concurrency: int, work: Path):
    from schemas.config import LLMConfig, ModelRole, PipelineConfig, RunConfig

    role = ModelRole(model="replay", base_url=url, api_key_env="BENCH_API_KEY")
    return PipelineConfig(
        run=RunConfig(name="bench", output_dir=str(work), max_concurrency=concurrency),
        llm=LLMConfig(
            mode="live",
            max_concurrency=concurrency,
            transport_retries=0,
            roles={"textual": role, "coding": role},
        ),
    )


def run(
    n: int,
    latency: float,
    concurrency: int,
    task_workers: int | None = None,
    *,
    separate_server: bool = True,
) -> dict[str, float]:
    """Run the benchmark and return its measurements."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner
    from tasks.context import StepContext

    from schemas.artifact import ItemOutcome, WorkItem
    from tasks.fanout import StepTally, run_items
    from tasks.llm.client import build_llm_client
    from tasks.llm.ledger import UsageLedger
    from tasks.llm.prompting import PromptLibrary
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout
    from tasks.store.vectors import WordLlamaEmbedder

    @task(name="bench-call", task_run_name="bench-{work.item_key}")
    def bench_call(work: WorkItem, ctx: StepContext) -> ItemOutcome:
        ctx.llm.create(
            Verdict,
            [{"role": "user", "content": f"Judge {work.item_key}."}],
            call_key=f"bench/{work.item_key}",
            role="textual",
        )
        return ItemOutcome(item_key=work.item_key)

    @flow(name="benchmark-llm-throughput")
    def bench_flow(ctx: StepContext) -> tuple[float, float]:
        calls = [
            (
                WorkItem(
                    step="bench",
                    item_key=f"item-{i:05d}",
                    params_hash="b",
                    code_version="bench",
                ),
                {},
            )
            for i in range(n)
        ]
        started = time.perf_counter()
        run_items(ctx, bench_call, calls, StepTally("bench"))
        cold = time.perf_counter() - started
        started = time.perf_counter()
        run_items(ctx, bench_call, calls, StepTally("bench"))
        return cold, time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cassette = work / "bench.jsonl"
        _write_cassette(cassette, n)
        with _replay_server(cassette, latency, separate=separate_server) as url:
            config = _config(url, concurrency, work)
            ledger = UsageLedger()
            layout = OutputLayout(work / "out")
            ctx = StepContext(
                config=config,
                config_hash="bench",
                layout=layout,
                store=ArtifactStore(layout),
                llm=build_llm_client(
                    config.llm,
                    config_dir=work,
                    env={"BENCH_API_KEY": "x"},
                    ledger=ledger,
                ),
                prompts=PromptLibrary(),
                ledger=ledger,
                results_storage=layout.prefect_results_dir,
                embedder=WordLlamaEmbedder(),
            )
            workers = task_workers or 2 * concurrency
            runner = ThreadPoolTaskRunner(max_workers=workers)
            cold, warm = bench_flow.with_options(
                task_runner=runner, validate_parameters=False
            )(ctx)
            calls = ledger.calls()
    ideal = n * latency / concurrency
    return {
        "n": n,
        "latency_s": latency,
        "concurrency": concurrency,
        "task_workers": task_workers or 2 * concurrency,
        "replay_server": "subprocess" if separate_server else "thread",
        "model_calls": calls,
        "wall_s": round(cold, 3),
        "ideal_s": round(ideal, 3),
        "efficiency": round(ideal / cold, 3),
        "overhead_per_call_ms": round((cold - ideal) * concurrency / n * 1000, 2),
        "cached_rerun_wall_s": round(warm, 3),
        "cached_rerun_ms_per_item": round(warm / n * 1000, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--concurrency", type=int, default=16, help="model calls in flight (C)"
    )
    parser.add_argument(
        "--task-workers",
        type=int,
        default=None,
        help="Prefect task threads (default 2*C: Prefect's own per-task work then "
        "overlaps the model calls, which stay capped at C)",
    )
    parser.add_argument(
        "--server-in-thread",
        action="store_true",
        help="run the replay server in a thread of this process",
    )
    args = parser.parse_args(argv)
    result = run(
        args.n,
        args.latency,
        args.concurrency,
        args.task_workers,
        separate_server=not args.server_in_thread,
    )
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: rollout orchestration efficiency (step r01) against replayed model
answers with injected latency.

It takes an output folder the demo world ran in (running the demo there first
when it has no queries), writes a cassette (SCRIPTED, made here: for every query
and trial the assistant makes the golden calls one per turn, then answers; the
user then ends the conversation), and runs r01 with `--trials` trials per query
and `--concurrency` rollouts (and model calls) in flight, each answer delayed
`--latency` seconds. Every rollout is a chain of sequential model calls, so the
ideal wall time is max(longest chain, sum of chains / concurrency) x latency;
efficiency = ideal / wall (1.0: orchestration, MCP tool calls and the
environment add nothing). Each run works on a fresh copy of the folder, so
nothing is cached.

    python -m benchmarks.rollouts --output-dir /tmp/bench-demo --trials 8 \
        --concurrency 16 --latency 0.25

Not part of the test run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.validation import ensure_demo

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"


def golden_chains(out: Path) -> dict[str, list[dict]]:
    """Each query id -> its task's golden calls."""
    from schemas.validated_task import AgentTask
    from tasks.rollout_files import read_queries
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    store = ArtifactStore(OutputLayout(out))
    queries, _ = read_queries(store)
    return {
        q.id: [
            c.model_dump(mode="json")
            for c in store.get(q.lineage.content_hash, AgentTask).payload.golden_calls
        ]
        for q in queries
    }


def write_cassette(path: Path, chains: dict[str, list[dict]], trials: int) -> int:
    """The scripted answers; returns the number of model calls they hold."""
    lines = []
    for qid, calls in sorted(chains.items()):
        for trial in range(trials):
            key = f"r01/{qid}/trial-{trial}"
            answers = [
                {"tool_calls": [{"name": c["tool"], "arguments": c["arguments"]}]}
                for c in calls
            ]
            answers.append({"content": "All done."})
            for i, answer in enumerate(answers):
                lines.append(
                    {"call_key": f"{key}/assistant/{i}", "attempt": 0, "answer": answer}
                )
            lines.append(
                {
                    "call_key": f"{key}/user/0",
                    "attempt": 0,
                    "answer": {"content": "Thanks. ###STOP###"},
                }
            )
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return len(lines)


def run_once(
    out: Path, chains: dict[str, list[dict]], args: argparse.Namespace
) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-rollouts-") as scratch:
        work = Path(scratch) / "out"
        shutil.copytree(
            out, work, ignore=shutil.ignore_patterns("rollouts", "evaluation")
        )
        cassette = Path(scratch) / "rollouts.jsonl"
        calls = write_cassette(cassette, chains, args.trials)
        config = yaml.safe_load(DEMO_CONFIG.read_text())
        config["run"]["max_concurrency"] = args.concurrency
        config["llm"] |= {
            "cassette": str(cassette),
            "replay_latency_s": args.latency,
            "max_concurrency": args.concurrency,
        }
        config["steps"]["r01_rollouts"] |= {
            "trials": args.trials,
            "environments": [],
            "max_turns": 4,
        }
        path = Path(scratch) / "bench.yaml"
        path.write_text(yaml.safe_dump(config))
        report = Path(scratch) / "report.json"
        started = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "agentskiller"),
                "rollout",
                "--config",
                str(path),
                "--output-dir",
                str(work),
                "--report-json",
                str(report),
            ],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        command_s = time.perf_counter() - started
        step = json.loads(report.read_text())["steps"]["r01_rollouts"]
    chain = [len(c) + 2 for c in chains.values() for _ in range(args.trials)]
    ideal = max(max(chain), sum(chain) / args.concurrency) * args.latency
    return {
        "rollouts": len(chain),
        "model_calls": calls,
        "step_s": step["seconds"],
        "command_s": command_s,
        "ideal_s": ideal,
        "efficiency": ideal / step["seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, type=Path)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args(argv)
    ensure_demo(args.output_dir)
    chains = golden_chains(args.output_dir)
    for index in range(args.runs):
        found = run_once(args.output_dir, chains, args)
        print(
            f"run {index + 1}: {found['rollouts']} rollouts, {found['model_calls']} "
            f"model calls at {args.latency:g} s, {args.concurrency} in flight: step "
            f"{found['step_s']:.1f} s (command {found['command_s']:.1f} s), ideal "
            f"{found['ideal_s']:.1f} s, efficiency {found['efficiency']:.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

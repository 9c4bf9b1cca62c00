"""`agentskiller rollout`, `evaluate` and `export`.

`rollout` and `evaluate` run step r01 or r02 of a configuration (as `run --step`
does), with their most used settings as options; `export` writes the training
files from the evaluated rollouts of an output directory.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.cli_output import fail

RunCommand = Callable[..., int]

ASSISTANTS = ("model", "oracle", "do_nothing", "wrong_argument")


def add_rollout_commands(sub: Any, run_command: RunCommand) -> None:
    """Add the three subcommands; `run_command(args, overrides)` runs a step."""
    roll = sub.add_parser(
        "rollout",
        help="converse every checked query k times (step r01)",
        description="A simulated user and the assistant talk; the assistant's "
        "tool calls run over MCP in a fresh session of the query's environment. "
        "Finished rollouts are kept: run again to resume.",
    )
    _common(roll)
    roll.add_argument(
        "--assistant",
        choices=ASSISTANTS,
        help="the configured model, or a built-in agent that checks the checkers",
    )
    roll.add_argument("--user", choices=("model", "scripted"))
    roll.add_argument("--trials", type=int, help="k: trials per query")
    roll.set_defaults(func=lambda a: run_command(_step(a, "r01"), _rollout_keys(a)))

    ev = sub.add_parser(
        "evaluate",
        help="score the rollouts and report pass^k (step r02)",
        description="Actions and final state are checked deterministically; NL "
        "assertions and the rubric review are LLM judges.",
    )
    _common(ev)
    ev.add_argument(
        "--rollouts",
        action="append",
        default=[],
        metavar="FILE",
        help="also evaluate this rollout JSONL (your own harness's); repeatable",
    )
    ev.add_argument(
        "--ordered-actions",
        action="store_true",
        help="golden calls must also happen in their order",
    )
    ev.add_argument(
        "--no-judges", action="store_true", help="skip the LLM judges (offline)"
    )
    ev.set_defaults(func=lambda a: run_command(_step(a, "r02"), _evaluate_keys(a)))

    ex = sub.add_parser(
        "export",
        help="write training files (openai, trl, sharegpt) from evaluated rollouts",
    )
    ex.add_argument("--output-dir", required=True)
    ex.add_argument(
        "--all",
        action="store_true",
        help="export every evaluated rollout, not only those that passed",
    )
    ex.add_argument(
        "--evaluator",
        help="keep rollouts by this evaluator's verdict (action, state, ...)",
    )
    ex.set_defaults(func=cmd_export)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="config YAML")
    parser.add_argument("--output-dir", help="overrides run.output_dir")
    parser.add_argument("--report-json", help="write the run report (JSON) here")
    parser.add_argument(
        "--retry-failed",
        action="store_true",
        help="redo items whose cached outcome is a failure",
    )


def _step(args: argparse.Namespace, step: str) -> argparse.Namespace:
    args.step, args.start, args.until = step, None, None
    return args


def _rollout_keys(args: argparse.Namespace) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    for option, key in (("assistant", "assistant"), ("user", "user")):
        if getattr(args, option) is not None:
            keys[f"steps.r01_rollouts.{key}"] = getattr(args, option)
    if args.trials is not None:
        keys["steps.r01_rollouts.trials"] = args.trials
    return keys


def _evaluate_keys(args: argparse.Namespace) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if args.rollouts:
        keys["steps.r02_evaluation.rollout_files"] = [
            str(Path(p).resolve()) for p in args.rollouts
        ]
    if args.ordered_actions:
        keys["steps.r02_evaluation.ordered_actions"] = True
    if args.no_judges:
        keys["steps.r02_evaluation.nl_assertions"] = False
        keys["steps.r02_evaluation.subjective"] = False
    return keys


def cmd_export(args: argparse.Namespace) -> int:
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout
    from tasks.training_export import export_training

    store = ArtifactStore(OutputLayout.at(args.output_dir))
    try:
        done = export_training(
            store, only_passed=not args.all, evaluator=args.evaluator
        )
    except FileNotFoundError as exc:
        return fail(str(exc))
    for fmt, path in done.written.items():
        print(f"{fmt:9} {path}")
    left = ", ".join(f"{n} {why}" for why, n in done.skipped.items()) or "none"
    print(f"{done.records} record(s) per format; left out: {left}")
    return 0

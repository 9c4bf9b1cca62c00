"""The `agentskiller` command line.

Input: argv. Output: exit code 0 on success, 1 when a run stops with failures, 2 on
bad input (config, step name, environment), each with a one-paragraph message.
Side effects: runs flows, writes the output directory and `--report-json`. The
configuration is checked before Prefect starts, so bad input fails in well under a
second.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tasks.settings import environment, prepare_prefect_environment
from tasks.steps import STEPS, UnknownStep, select_steps
from tasks.store.config_loader import (
    ConfigError,
    load_config,
    resolve_output_dir,
    with_overrides,
)

DEMO_HINT = "agentskiller run --config configs/demo.yaml"


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _print_report(report: dict) -> None:
    print(
        f"\nrun {report['status']}: {report['llm_calls']} model call(s); "
        f"output in {report['output_dir']}"
    )
    print(f"{'step':<28}{'ok':>5}{'failed':>8}{'cached':>8}{'calls':>7}  note")
    for s in report["steps"].values():
        print(
            f"{s['step']:<28}{s['ok']:>5}{s['failed']:>8}{s['cached']:>8}"
            f"{s['llm_calls']:>7}  {s['note']}"
        )
        for f in s["failures"]:
            print(
                f"    - [{f['reason']}] {f['item_key']}: "
                f"{f['message'].splitlines()[0][:160]}"
            )
    if report.get("error"):
        print(f"\nstopped: {report['error']}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    try:
        loaded = with_overrides(load_config(Path(args.config)), args.output_dir)
        select_steps(step=args.step, start=args.start, until=args.until)
    except (ConfigError, UnknownStep) as exc:
        return _fail(str(exc))
    from tasks.setup import preflight

    problems = preflight(loaded, environment())
    if problems:
        return _fail(
            " ".join(problems) + f" (To try the pipeline offline: {DEMO_HINT})"
        )
    prepare_prefect_environment()
    from flows.pipeline import PipelineFailed, run_pipeline

    try:
        state = run_pipeline(
            config_path=str(loaded.path),
            output_dir=args.output_dir,
            step=args.step,
            start=args.start,
            until=args.until,
            return_state=True,
        )
    except KeyboardInterrupt:
        return _fail(
            "interrupted; every item that finished is kept and will not be redone "
            "when you run the same command again",
            130,
        )
    result = state.result(raise_on_failure=False)
    if isinstance(result, PipelineFailed):
        report = result.report.model_dump(mode="json")
    elif isinstance(result, BaseException):
        return _fail(f"{type(result).__name__}: {result}", 1)
    else:
        report = result.model_dump(mode="json")
    if args.report_json:
        Path(args.report_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report_json).write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )
    _print_report(report)
    return 0 if report["status"] == "ok" else 1


def _output_dir(args: argparse.Namespace) -> Path:
    if args.config:
        loaded = with_overrides(load_config(Path(args.config)), args.output_dir)
        return resolve_output_dir(loaded, Path.cwd())
    return Path(args.output_dir or "outputs").resolve()


def cmd_status(args: argparse.Namespace) -> int:
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    try:
        out = _output_dir(args)
        config_hash = (
            with_overrides(load_config(Path(args.config)), args.output_dir).config_hash
            if args.config
            else None
        )
    except ConfigError as exc:
        return _fail(str(exc))
    store = ArtifactStore(OutputLayout(out))
    print(f"output directory: {out}")
    print(f"{'step':<28}{'status':<10}{'outputs':>8}{'failed':>8}  note")
    for info in STEPS:
        manifest = store.read_manifest(info.name)
        if manifest is None:
            print(f"{info.name:<28}{'pending':<10}{'-':>8}{'-':>8}")
            continue
        status = "done"
        if config_hash and manifest.config_hash != config_hash:
            status = "stale"
        note = str(manifest.stats.get("note", ""))
        print(
            f"{info.name:<28}{status:<10}{len(manifest.outputs):>8}"
            f"{len(manifest.failed):>8}  {note}"
        )
    return 0


def cmd_list_steps(args: argparse.Namespace) -> int:
    print(f"{'id':<5}{'name':<28}{'phase':<20}{'llm':<5}description")
    for s in STEPS:
        print(
            f"{s.id:<5}{s.name:<28}{s.phase:<20}"
            f"{'yes' if s.uses_llm else 'no':<5}{s.description}"
        )
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    from tasks.store import lineage
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    try:
        out = _output_dir(args)
    except ConfigError as exc:
        return _fail(str(exc))
    target = args.target
    candidate = Path(target)
    if candidate.is_absolute() or candidate.exists():
        try:
            target = candidate.resolve().relative_to(out).as_posix()
        except ValueError:
            return _fail(
                f"{target} is not inside the output directory {out} (use --output-dir)"
            )
    store = ArtifactStore(OutputLayout(out))
    refs = lineage.resolve(store, target)
    if not refs:
        return _fail(f"no artifact found for {args.target!r} in {out}")
    for ref in refs:
        tree = (
            lineage.descendants(store, ref)
            if args.descendants
            else lineage.ancestry(store, ref)
        )
        print(lineage.render(tree))
    return 0


def cmd_replay_server(args: argparse.Namespace) -> int:
    from tasks.llm import replay_server

    return replay_server.main(
        [
            "--cassette",
            args.cassette,
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--latency",
            str(args.latency),
        ]
    )


def cmd_serve_env(args: argparse.Namespace, extra: list[str]) -> int:
    from tasks.runtime import serve

    argv = [args.name, "--output-dir", args.output_dir, "--transport", args.transport]
    argv += ["--host", args.host, "--port", str(args.port), *extra]
    return serve.main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentskiller", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline (or some steps) on a config")
    run.add_argument(
        "--config", required=True, help="config YAML, e.g. configs/demo.yaml"
    )
    run.add_argument("--output-dir", help="overrides run.output_dir")
    pick = run.add_mutually_exclusive_group()
    pick.add_argument(
        "--step", help="run only this step (s04, s04_blueprint_generation, ...)"
    )
    pick.add_argument("--from", dest="start", help="run from this step on")
    run.add_argument("--until", help="stop after this step")
    run.add_argument("--report-json", help="write the run report (JSON) here")
    run.set_defaults(func=cmd_run)

    status = sub.add_parser(
        "status", help="show each step's state in an output directory"
    )
    status.add_argument(
        "--config", help="config YAML (its output_dir, and stale detection)"
    )
    status.add_argument("--output-dir")
    status.set_defaults(func=cmd_status)

    steps = sub.add_parser("list-steps", help="list the pipeline steps")
    steps.set_defaults(func=cmd_list_steps)

    lin = sub.add_parser(
        "lineage", help="print an artifact's ancestry (or descendants)"
    )
    lin.add_argument(
        "target", help="an output file, an artifact hash (prefix) or kind:id"
    )
    lin.add_argument("--config", help="config YAML whose output_dir to use")
    lin.add_argument("--output-dir")
    lin.add_argument(
        "--descendants", action="store_true", help="show what was derived from it"
    )
    lin.set_defaults(func=cmd_lineage)

    replay = sub.add_parser(
        "replay-server", help="serve a cassette as an OpenAI-compatible API"
    )
    replay.add_argument("--cassette", required=True)
    replay.add_argument("--host", default="127.0.0.1")
    replay.add_argument("--port", type=int, default=8765)
    replay.add_argument(
        "--latency", type=float, default=0.0, help="seconds added per answer"
    )
    replay.set_defaults(func=cmd_replay_server)

    env = sub.add_parser(
        "serve-env",
        help="serve a generated environment as an MCP server (stdio or HTTP)",
        description="The tool module runs only in a sandboxed worker process. "
        "Other options (--simulation-time, --seed, --confirm-tools, --lenient, "
        "--call-timeout) are passed to python -m tasks.runtime.serve.",
    )
    env.add_argument("name", help="server name, e.g. DentalAppointments")
    env.add_argument("--output-dir", required=True)
    env.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    env.add_argument("--host", default="127.0.0.1")
    env.add_argument("--port", type=int, default=8000)
    env.set_defaults(func=cmd_serve_env, passthrough=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if getattr(args, "passthrough", False):
        return args.func(args, extra)
    if extra:
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

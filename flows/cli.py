"""The `agentskiller` command line.

Input: argv. Output: exit code 0 on success, 1 when a run stops with failures, 2 on
bad input (config, step name, environment, unknown lineage target, no output
directory to read), each with a one-paragraph `error: ...` message; 3 when a step
produced nothing usable (run status "starved": the steps after it were skipped);
130/143 when interrupted by SIGINT/SIGTERM; and 141 when whoever reads our output
closes the pipe early (`agentskiller lineage X | head -1`).
Side effects: runs flows, writes the output directory and `--report-json`. The
configuration is checked before Prefect starts, so bad input fails in well under a
second.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

from flows.cli_inspect import (
    cmd_lineage,
    cmd_list_steps,
    cmd_status,
)
from flows.cli_output import fail, print_report
from flows.cli_rollouts import add_rollout_commands
from tasks.settings import (
    environment,
    prepare_prefect_environment,
    tune_garbage_collection,
)
from tasks.steps import UnknownStep, select_steps
from tasks.store.config_loader import (
    ConfigError,
    load_config,
    resolve_output_dir,
    with_overrides,
)

# Exit status of a command whose reader went away: what a shell reports for a
# process killed by SIGPIPE (128 + 13), as `git log | head -1` or `yes | head -1` do.
EXIT_BROKEN_PIPE = 141


EXIT_CODES = {"ok": 0, "failed": 1, "error": 1, "starved": 3}
"""Exit code per run status; 2 is bad input, 128 + n a signal."""


def cmd_run(args: argparse.Namespace, overrides: dict | None = None) -> int:
    """`run` (and `rollout` / `evaluate`, which pick a step and override keys)."""
    try:
        loaded = with_overrides(
            load_config(Path(args.config)), args.output_dir, overrides=overrides
        )
        mode = loaded.config.run.task_mode
        steps = select_steps(
            step=args.step,
            start=args.start,
            until=args.until,
            mode=mode,
            optional=loaded.config.steps.r01_rollouts.enabled,
        )
    except (ConfigError, UnknownStep) as exc:
        return fail(str(exc))
    from tasks.setup import preflight, prerequisite_problems

    problems = preflight(loaded, environment()) or prerequisite_problems(
        mode, resolve_output_dir(loaded, Path.cwd()), steps
    )
    if problems:
        # A missing API key already names the offline demo; say it once.
        return fail("; ".join(problems))
    from tasks.store.paths import OutputLayout
    from tasks.store.run_lock import RunLocked, check_run_lock

    try:  # refuse before Prefect starts; the flow takes the lock itself
        check_run_lock(OutputLayout(resolve_output_dir(loaded, Path.cwd())))
    except RunLocked as exc:
        return fail(str(exc))
    prepare_prefect_environment()
    from flows.interrupts import InterruptGuard
    from flows.pipeline import PipelineFailed, run_pipeline
    from flows.prefect_api import PrefectUnavailable, prefect_api

    tune_garbage_collection()
    guard = InterruptGuard()
    try:
        with guard, prefect_api(on_force=guard.on_force):
            state = run_pipeline(
                config_path=str(loaded.path),
                output_dir=args.output_dir,
                step=args.step,
                start=args.start,
                until=args.until,
                retry_failed=args.retry_failed,
                overrides=overrides,
                return_state=True,
            )
    except PrefectUnavailable as exc:
        return fail(str(exc), 1)
    except KeyboardInterrupt:
        return fail(
            "interrupted; every item that finished is kept and will not be redone "
            "when you run the same command again",
            guard.exit_code,
        )
    result = state.result(raise_on_failure=False)
    if isinstance(result, PipelineFailed):
        report = result.report.model_dump(mode="json")
    elif isinstance(result, BaseException):
        code = 2 if isinstance(result, RunLocked) else 1
        return fail(f"{type(result).__name__}: {result}", code)
    else:
        report = result.model_dump(mode="json")
    if args.report_json:
        Path(args.report_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report_json).write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )
    print_report(report)
    if guard.received is not None:
        return guard.exit_code
    return EXIT_CODES.get(report["status"], 1)


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


def cmd_check_task(args: argparse.Namespace) -> int:
    from tasks.check_task import QueryNotFound, check_task
    from tasks.store.artifacts import StoreError

    try:
        result = check_task(Path(args.output_dir), args.query_id)
    except (QueryNotFound, StoreError, FileNotFoundError) as exc:
        return fail(str(exc))
    for error in result.errors:
        print(error)
    verdict = "ok" if result.ok else "MISMATCH"
    print(
        f"{verdict}: {result.query_id} on {result.environment}: final state "
        f"{result.final_hash[:16]}, expected {result.expected_hash[:16]}"
    )
    if not result.ok:
        print("diff of the replay:", result.diff.model_dump_json())
        print("expected diff:     ", result.expected_diff.model_dump_json())
    return 0 if result.ok else 1


def cmd_serve_episodes(args: argparse.Namespace) -> int:
    from tasks.runtime import episode_server

    argv = ["--output-dir", args.output_dir, "--host", args.host]
    return episode_server.main([*argv, "--port", str(args.port)])


def cmd_view(args: argparse.Namespace) -> int:
    from tasks.rollout_viewer import (
        NoRollouts,
        viewer_page,
        viewer_server,
        write_viewer,
    )
    from tasks.store.paths import OutputLayout

    layout = OutputLayout.at(args.output_dir)
    try:
        page = viewer_page(layout)
    except NoRollouts as exc:
        return fail(str(exc))
    written = write_viewer(layout, page, Path(args.write) if args.write else None)
    print(f"viewer written to {written}")
    if not args.serve:
        return 0
    try:
        server = viewer_server(page, args.port)
    except OSError as exc:
        return fail(f"cannot serve on 127.0.0.1:{args.port}: {exc}")
    host, port = server.server_address[:2]
    print(f"serving the viewer at http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
    return 0


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
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="ask again for items whose cached outcome is a failure (invalid or "
        "cut-off model output); items that succeeded stay cached",
    )
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
        "--call-timeout, --overlay FILE) are passed to python -m "
        "tasks.runtime.serve.",
    )
    env.add_argument(
        "name",
        help="server name, e.g. DentalAppointments, or a fused name (members "
        "sorted, joined by _), e.g. DentalAppointments_TreatmentBilling",
    )
    env.add_argument("--output-dir", required=True)
    env.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    env.add_argument("--host", default="127.0.0.1")
    env.add_argument("--port", type=int, default=8000)
    env.set_defaults(func=cmd_serve_env, passthrough=True)

    check = sub.add_parser(
        "check-task",
        help="replay a query's golden calls against its served environment and "
        "compare the final state with the recorded one",
    )
    check.add_argument("query_id", help="the query's id (queries/*.jsonl)")
    check.add_argument("--output-dir", required=True)
    check.set_defaults(func=cmd_check_task)

    episodes = sub.add_parser(
        "serve-episodes",
        help="serve episodes of the queries over HTTP for trainers in other "
        "processes (JSON API; tools over MCP)",
        description="POST /episodes {query_id} starts an episode in a fresh "
        "session of its environment and returns its MCP URL, tools, messages "
        "and system prompt; GET /episodes/ID/state, POST /episodes/ID/reward "
        "{messages}, DELETE /episodes/ID.",
    )
    episodes.add_argument("--output-dir", required=True)
    episodes.add_argument("--host", default="127.0.0.1")
    episodes.add_argument("--port", type=int, default=8100)
    episodes.set_defaults(func=cmd_serve_episodes)

    add_rollout_commands(sub, cmd_run)

    view = sub.add_parser(
        "view",
        help="write (or serve) a static HTML viewer of rollouts and their verdicts",
        description="Reads rollouts/*.jsonl, evaluation/results.jsonl (rollouts "
        "without a result show as not evaluated) and the queries' golden tasks, "
        "and writes one self-contained HTML file.",
    )
    view.add_argument("--output-dir", required=True)
    view.add_argument(
        "--write",
        metavar="FILE",
        help="where to write it (default: <output-dir>/evaluation/viewer.html)",
    )
    view.add_argument(
        "--serve",
        action="store_true",
        help="also serve it on http://127.0.0.1:PORT/ until Ctrl-C",
    )
    view.add_argument("--port", type=int, default=8000)
    view.set_defaults(func=cmd_view)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        code = _dispatch(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left (`| head -1`). Point stdout at /dev/null so the flush at
        # interpreter exit cannot fail again and print "Exception ignored ...".
        with contextlib.suppress(OSError, io.UnsupportedOperation):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _dispatch(argv: list[str] | None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if getattr(args, "passthrough", False):
        return args.func(args, extra)
    if extra:
        build_parser().error(f"unrecognized arguments: {' '.join(extra)}")
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())

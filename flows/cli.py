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

from schemas.artifact import FailedItem
from schemas.report import RunReport, StepReport
from tasks.core.text_table import render_table
from tasks.settings import Settings, environment, prepare_prefect_environment
from tasks.steps import STEPS, UnknownStep, select_steps
from tasks.store.config_loader import (
    ConfigError,
    load_config,
    resolve_output_dir,
    with_overrides,
)

# Exit status of a command whose reader went away: what a shell reports for a
# process killed by SIGPIPE (128 + 13), as `git log | head -1` or `yes | head -1` do.
EXIT_BROKEN_PIPE = 141


class NoOutputDir(Exception):
    """No output directory was named and none could be found."""


EXIT_CODES = {"ok": 0, "failed": 1, "error": 1, "starved": 3}
"""Exit code per run status; 2 is bad input, 128 + n a signal."""


def _fail(message: str, code: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _print_report(report: dict) -> None:
    print(
        f"\nrun {report['status']}: {report['llm_calls']} model call(s); "
        f"output in {report['output_dir']}"
    )
    steps = list(report["steps"].values())
    header, *lines = render_table(
        ["step", "ok", "failed", "cached", "calls", "note"],
        [
            [s["step"], s["ok"], s["failed"], s["cached"], s["llm_calls"], s["note"]]
            for s in steps
        ],
        align=["left", "right", "right", "right", "right", "left"],
    )
    print(header)
    for line, s in zip(lines, steps, strict=True):
        print(line)
        for f in s["failures"]:
            print(f"    - [{f['reason']}] {f['item_key']}: {_gist(f['message'])}")
    if report.get("error"):
        print(f"\nstopped: {report['error']}", file=sys.stderr)


def _gist(message: str, limit: int = 160) -> str:
    """The first line of a message, cut at `limit` characters with a visible mark."""
    first = next(iter(message.splitlines()), "")
    return first if len(first) <= limit else first[: limit - 3] + "..."


def cmd_run(args: argparse.Namespace) -> int:
    try:
        loaded = with_overrides(load_config(Path(args.config)), args.output_dir)
        select_steps(step=args.step, start=args.start, until=args.until)
    except (ConfigError, UnknownStep) as exc:
        return _fail(str(exc))
    from tasks.setup import preflight

    problems = preflight(loaded, environment())
    if problems:
        # A missing API key already names the offline demo; say it once.
        return _fail("; ".join(problems))
    from tasks.store.paths import OutputLayout
    from tasks.store.run_lock import RunLocked, check_run_lock

    try:  # refuse before Prefect starts; the flow takes the lock itself
        check_run_lock(OutputLayout(resolve_output_dir(loaded, Path.cwd())))
    except RunLocked as exc:
        return _fail(str(exc))
    prepare_prefect_environment()
    from flows.interrupts import InterruptGuard
    from flows.pipeline import PipelineFailed, run_pipeline
    from flows.prefect_api import PrefectUnavailable, prefect_api

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
                return_state=True,
            )
    except PrefectUnavailable as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return _fail(
            "interrupted; every item that finished is kept and will not be redone "
            "when you run the same command again",
            guard.exit_code,
        )
    result = state.result(raise_on_failure=False)
    if isinstance(result, PipelineFailed):
        report = result.report.model_dump(mode="json")
    elif isinstance(result, BaseException):
        code = 2 if isinstance(result, RunLocked) else 1
        return _fail(f"{type(result).__name__}: {result}", code)
    else:
        report = result.model_dump(mode="json")
    if args.report_json:
        Path(args.report_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report_json).write_text(
            json.dumps(report, indent=2) + "\n", encoding="utf-8"
        )
    _print_report(report)
    if guard.received is not None:
        return guard.exit_code
    return EXIT_CODES.get(report["status"], 1)


def _output_dir(args: argparse.Namespace) -> tuple[Path, str | None]:
    """The output directory a reading command uses, and why, when it was not named.

    Returns:
        The directory, and None when `--output-dir`/`--config` named it, else a
        phrase saying where the default came from.

    Unnamed, it is the run the working directory is in, else the folder the most
    recent run recorded, else `outputs` (under `AGENTSKILLER_DATA_DIR` if set).

    Raises:
        ConfigError: The named config cannot be loaded.
        NoOutputDir: Nothing was named, no run was recorded (or its folder is
            gone) and there is no `outputs` folder.
    """
    if args.config:
        loaded = with_overrides(load_config(Path(args.config)), args.output_dir)
        return resolve_output_dir(loaded, Path.cwd()), None
    if args.output_dir:
        return Path(args.output_dir).expanduser().resolve(), None
    from tasks.store.last_run import last_output_dir
    from tasks.store.lineage import find_output_root
    from tasks.store.paths import DEFAULT_OUTPUT_DIR

    here = find_output_root(Path.cwd())
    if here is not None:
        return here, "the run the working directory is in"
    last = last_output_dir()
    if last is not None and last.is_dir():
        return last, "the last run's output"
    base = Settings().data_dir or Path.cwd()
    fallback = (base / DEFAULT_OUTPUT_DIR).resolve()
    if fallback.is_dir():
        return fallback, "no run recorded; the default output folder"
    gone = f" (the last run's output {last} no longer exists)" if last else ""
    raise NoOutputDir(
        f"no output directory to read: no run has been recorded{gone} and "
        f"{fallback} does not exist; pass --output-dir DIR or --config FILE"
    )


def _reading(out: Path, why: str | None) -> str:
    return f"reading {out} ({why}; use --output-dir to choose)"


def cmd_status(args: argparse.Namespace) -> int:
    from tasks.store.artifacts import ArtifactStore, UnusableStepOutput
    from tasks.store.paths import OutputLayout

    try:
        out, why = _output_dir(args)
        config_hash = (
            with_overrides(load_config(Path(args.config)), args.output_dir).config_hash
            if args.config
            else None
        )
    except (ConfigError, NoOutputDir) as exc:
        return _fail(str(exc))
    store = ArtifactStore(OutputLayout(out))
    print(_reading(out, why) if why else f"output directory: {out}")
    last = store.latest_report()
    rows: list[list[object]] = []
    failures: list[FailedItem] = []
    for info in STEPS:
        try:
            manifest = store.read_manifest(info.name)
        except UnusableStepOutput as exc:
            rows.append([info.name, "invalid", "-", "-", str(exc)])
            continue
        stopped = _stopped(last, info.name)
        if stopped is not None:
            failures += stopped.failures
            done = "-" if manifest is None else len(manifest.outputs)
            rows.append([info.name, "stopped", done, stopped.failed, stopped.note])
            continue
        if manifest is None:
            rows.append([info.name, "pending", "-", "-", ""])
            continue
        status = "done"
        if config_hash and manifest.config_hash != config_hash:
            status = "stale"
        failures += manifest.failed
        note = str(manifest.stats.get("note", ""))
        rows.append(
            [info.name, status, len(manifest.outputs), len(manifest.failed), note]
        )
    table = render_table(
        ["step", "status", "outputs", "failed", "note"],
        rows,
        align=["left", "left", "right", "right", "left"],
    )
    print("\n".join(table))
    if failures:
        print("\nfailed items:")
        print("\n".join(_failure_lines(failures)))
    return 0


def _stopped(last: RunReport | None, step: str) -> StepReport | None:
    """The step's report when the last run stopped in it (its manifest, if any, is
    from an earlier run)."""
    if last is None or last.status == "ok":
        return None
    report = last.steps.get(step)
    if report is None or not any(f.blocking for f in report.failures):
        return None
    return report


def _failure_lines(failures: list[FailedItem]) -> list[str]:
    return [
        f"  {f.step}  [{f.reason}] {f.item_key}: {_gist(f.message)}" for f in failures
    ]


def cmd_list_steps(args: argparse.Namespace) -> int:
    table = render_table(
        ["id", "name", "phase", "llm", "description"],
        [
            [s.id, s.name, s.phase, "yes" if s.uses_llm else "no", s.description]
            for s in STEPS
        ],
    )
    print("\n".join(table))
    return 0


def _lineage_root(args: argparse.Namespace) -> tuple[Path, str]:
    """The output directory to search, and the target relative to it if a path.

    A target that is a path (absolute, or existing relative to the working
    directory) names its own output directory: the folder above it that holds
    `.agentskiller/`. Otherwise the directory is found as for `status`.

    Raises:
        ConfigError, NoOutputDir: As `_output_dir`; NoOutputDir also when a path
            target is outside every output directory.
    """
    from tasks.store.lineage import find_output_root

    target = args.target
    candidate = Path(target).expanduser()
    is_path = candidate.is_absolute() or candidate.exists()
    if args.config or args.output_dir:
        out, _ = _output_dir(args)
    elif is_path:
        found = find_output_root(candidate)
        if found is None:
            raise NoOutputDir(
                f"{target} is not inside an AgentSkiller output directory (no "
                ".agentskiller/ folder in or above it); pass --output-dir DIR"
            )
        out = found
    else:
        out, why = _output_dir(args)
        print(_reading(out, why), file=sys.stderr)
    if not is_path:
        return out, target
    try:
        return out, candidate.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        raise NoOutputDir(
            f"{target} is not inside the output directory {out}"
        ) from None


def cmd_lineage(args: argparse.Namespace) -> int:
    from tasks.store import lineage
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    try:
        out, target = _lineage_root(args)
    except (ConfigError, NoOutputDir) as exc:
        return _fail(str(exc))
    if not OutputLayout(out).internal.is_dir():
        return _fail(
            f"{out} is not an AgentSkiller output directory (it has no .agentskiller/)"
        )
    store = ArtifactStore(OutputLayout(out))
    try:
        refs = lineage.resolve(store, target)
    except lineage.UnknownTarget as exc:
        return _fail(str(exc))
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

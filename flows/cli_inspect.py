"""The reading commands: `status`, `list-steps` and `lineage`.

Input: parsed arguments (an output directory or fsspec URL such as
`s3://bucket/prefix`, a config, a lineage target). Output: tables and lineage trees
on stdout; exit code 0, or 2 with one `error:` line when there is nothing to read
(or the storage cannot be reached). Side effects: none (the output location is only
read).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.cli_output import fail, gist
from schemas.artifact import FailedItem
from schemas.report import RunReport, StepReport
from tasks.core.text_table import render_table
from tasks.settings import Settings
from tasks.steps import STEPS
from tasks.store.config_loader import (
    ConfigError,
    load_config,
    resolve_output_dir,
    with_overrides,
)
from tasks.store.location import RemotePath, StorePath, is_url, store_path


class NoOutputDir(Exception):
    """No output directory was named and none could be found."""


def _output_dir(args: argparse.Namespace) -> tuple[StorePath, str | None]:
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
    if args.output_dir and is_url(args.output_dir):
        return store_path(args.output_dir), None
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


def _reading(out: StorePath, why: str | None) -> str:
    return f"reading {out} ({why}; use --output-dir to choose)"


def _remote_problem(out: StorePath) -> str:
    """Why an output location at a URL cannot be read ("" when it can)."""
    if not isinstance(out, RemotePath):
        return ""
    from tasks.store.paths import OutputLayout

    try:
        if OutputLayout(out).internal.is_dir():
            return ""
    except Exception as exc:  # the one boundary: any backend failure is reported
        return f"cannot read the output location {out}: {type(exc).__name__}: {exc}"
    return f"{out} holds no AgentSkiller output (nothing under .agentskiller/)"


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
        return fail(str(exc))
    problem = _remote_problem(out)
    if problem:
        return fail(problem)
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
        f"  {f.step}  [{f.reason}] {f.item_key}: {gist(f.message)}" for f in failures
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


def _lineage_root(args: argparse.Namespace) -> tuple[StorePath, str]:
    """The output directory to search, and the target relative to it if a path.

    A target that is a path (absolute, or existing relative to the working
    directory) or a URL names its own output directory: the folder or prefix above
    it that holds `.agentskiller/`. Otherwise the directory is found as for
    `status`.

    Raises:
        ConfigError, NoOutputDir: As `_output_dir`; NoOutputDir also when a path
            target is outside every output directory.
    """
    from tasks.store.lineage import find_output_root

    target = args.target
    if is_url(target) and not (args.config or args.output_dir):
        return _url_root(target), target
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
    if not is_path or isinstance(out, RemotePath):
        return out, target
    try:
        return out, candidate.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        raise NoOutputDir(
            f"{target} is not inside the output directory {out}"
        ) from None


def _url_root(target: str) -> RemotePath:
    """The output location a URL target lies in (the nearest prefix above it
    holding `.agentskiller/`).

    Raises:
        NoOutputDir: No prefix above it is an output location.
    """
    from tasks.store.paths import OutputLayout

    here = RemotePath.of(target)
    while True:
        if OutputLayout(here).internal.is_dir():
            return here
        if here.parent == here:
            raise NoOutputDir(
                f"{target} is not inside an AgentSkiller output location (no "
                ".agentskiller/ in or above it); pass --output-dir URL"
            )
        here = here.parent


def cmd_lineage(args: argparse.Namespace) -> int:
    from tasks.store import lineage
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.paths import OutputLayout

    try:
        out, target = _lineage_root(args)
    except (ConfigError, NoOutputDir) as exc:
        return fail(str(exc))
    problem = _remote_problem(out)
    if problem:
        return fail(problem)
    if not OutputLayout(out).internal.is_dir():
        return fail(
            f"{out} is not an AgentSkiller output directory (it has no .agentskiller/)"
        )
    store = ArtifactStore(OutputLayout(out))
    try:
        refs = lineage.resolve(store, target)
    except lineage.UnknownTarget as exc:
        return fail(str(exc))
    for ref in refs:
        tree = (
            lineage.descendants(store, ref)
            if args.descendants
            else lineage.ancestry(store, ref)
        )
        print(lineage.render(tree))
    return 0

"""Serving a generated environment: takes an output directory and a server name,
reads `blueprints.json`, `entities.json`, the server's data files under
`database/outputs/` and its tool module `mcp_servers/<Server>.py`.
A fused name (`DentalAppointments_TreatmentBilling`, see `tasks.runtime.fusion`)
serves its members as one environment. `open_environment` (what `serve-env`
uses) builds the spec in this process from the exports and a static read of the
modules' `CONFIRM_TOOLS` (`tasks.runtime.targets`), and runs the tool modules
only inside a sandboxed worker (`SandboxedEnvironment`); `load_environment`
imports them here and returns an in-process `Environment` (for trusted code,
tests, and code already running inside a sandbox). `serve` runs either as
an MCP server over stdio or streamable HTTP. Command line: `python -m
tasks.runtime.serve NAME --output-dir DIR|URL [--transport stdio|http] [--host H]
[--port P] [--call-timeout S] [--overlay FILE]`; `--overlay` names a JSON file of
table name -> rows that every new session starts with on top of the base data
(a cross-domain task's records, `tasks.runtime.overlay`); an fsspec URL
(`s3://bucket/prefix`) is first staged to a temporary local folder
(`tasks.store.staging`). Side effects: reads those files; `load_environment`
imports the tool module (its top-level code runs); `open_environment` starts
the worker; `serve` blocks while serving. Nothing is written outside the
worker's scratch directory and that staging folder."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

from schemas.config import RunConfig
from schemas.fused_environment import FusedEnvironmentSpec
from schemas.fusion import is_fused, members
from tasks.runtime.database import Database
from tasks.runtime.environment import Environment, ToolServer
from tasks.runtime.fusion import (
    fused_environment,
    member_specs,
    served_spec,
)
from tasks.runtime.implementations import (
    implementations_from,
    load_tool_module,
    module_confirm_tools,
)
from tasks.runtime.overlay import Overlay, read_overlay
from tasks.runtime.sandbox_files import SandboxSetupError
from tasks.runtime.sandboxed_environment import (
    DEFAULT_CALL_TIMEOUT_S,
    SandboxedEnvironment,
    worker_request,
)
from tasks.runtime.targets import (
    declared_confirm_tools,
    named_confirm_tools,
    served_members,
    served_target,
    tool_module_path,
)
from tasks.store.location import is_url
from tasks.store.paths import OutputLayout

DEFAULT_SIMULATION_TIME: str = RunConfig.model_fields["simulation_time"].default
DEFAULT_SEED: int = RunConfig.model_fields["seed"].default

Transport = Literal["stdio", "http"]


def load_environment(
    output_dir: Path,
    server_name: str,
    *,
    simulation_time: str = DEFAULT_SIMULATION_TIME,
    seed: int = DEFAULT_SEED,
    confirm_tools: Collection[str] | None = None,
    strict: bool = True,
    overlay: Overlay | None = None,
) -> Environment:
    """Assemble a server's (or a fused environment's) environment from the
    output directory.

    Args:
        output_dir: The pipeline's output root.
        server_name: The server (`MCP_server_name`), e.g. "DentalAppointments",
            or a fused name, e.g. "DentalAppointments_TreatmentBilling".
        simulation_time: The fixed "now", ISO 8601.
        seed: Seed of id generation.
        confirm_tools: Write tools that need confirmation (in a fused
            environment named `Server.tool` or `Server__tool`); None reads each
            tool module's `CONFIRM_TOOLS` (empty if it declares none).
        strict: Refuse data with any issue (missing file, broken key or foreign
            key, unknown or missing column); otherwise load what is usable and
            keep the issues in `environment.base.issues`.
        overlay: Rows every new session starts with (session table names;
            hashes and diffs stay against the base data).

    Returns:
        The environment.

    Raises:
        FileNotFoundError: If `blueprints.json` or `entities.json` is missing.
        ValueError: If the server is unknown or its blueprint invalid, or a
            fused name names a member that is not a built server.
        DataLoadError: If `strict` and the data has issues.
        OverlayError: If the overlay does not fit the tables.
        ImplementationError: If a tool module cannot serve the tools.
    """
    names = served_members(output_dir, server_name)
    modules = {
        name: load_tool_module(tool_module_path(output_dir, name)) for name in names
    }
    target = served_target(
        output_dir,
        server_name,
        simulation_time=simulation_time,
        seed=seed,
        confirm_tools=lambda name: (
            module_confirm_tools(modules[name])
            if confirm_tools is None
            else named_confirm_tools(server_name, name, confirm_tools)
        ),
    )
    database = Database.load(served_spec(target), output_dir, strict=strict)
    bodies = {
        name: implementations_from(modules[name], [tool.name for tool in spec.tools])
        for name, spec in member_specs(target).items()
    }
    if isinstance(target, FusedEnvironmentSpec):
        return fused_environment(target, database, bodies, overlay=overlay)
    return Environment(target, database, bodies[target.name], overlay=overlay)


def open_environment(
    output_dir: Path,
    server_name: str,
    *,
    simulation_time: str = DEFAULT_SIMULATION_TIME,
    seed: int = DEFAULT_SEED,
    confirm_tools: Collection[str] | None = None,
    strict: bool = True,
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    overlay: Overlay | None = None,
    wait: bool = True,
) -> SandboxedEnvironment:
    """Start a server's (or a fused environment's) environment in a sandboxed
    worker (nothing of the tool modules runs in this process). Arguments as for
    `load_environment`, plus:

    Args:
        call_timeout_s: Wall-clock deadline of one tool call; a worker that
            misses it is killed and the call returns an error result.
        wait: False returns once the worker is launched, before it serves
            (see `SandboxedEnvironment.ready`).

    Returns:
        The running environment; close it (or use it as a context manager).

    Raises:
        FileNotFoundError: If `blueprints.json` or `entities.json` is missing.
        ValueError: If the server is unknown or its blueprint invalid, or a
            fused name names a member that is not a built server.
        ImplementationError: If a module is missing or its `CONFIRM_TOOLS` is
            not a literal tuple of names.
        WorkerStartError: If the worker refuses the data, the modules or the
            overlay, or the sandbox cannot start it.
    """
    names = served_members(output_dir, server_name)
    paths = {name: tool_module_path(output_dir, name) for name in names}
    target = served_target(
        output_dir,
        server_name,
        simulation_time=simulation_time,
        seed=seed,
        confirm_tools=lambda name: (
            declared_confirm_tools(paths[name])
            if confirm_tools is None
            else named_confirm_tools(server_name, name, confirm_tools)
        ),
    )
    request = worker_request(output_dir, target, paths, strict=strict, overlay=overlay)
    return SandboxedEnvironment(
        target, request, call_timeout_s=call_timeout_s, wait=wait
    )


def serve(
    environment: ToolServer,
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
) -> None:
    """Serve the environment as an MCP server until the transport closes.

    Args:
        environment: The environment (in-process or sandboxed).
        transport: "stdio" (one session) or "http" (streamable HTTP at `/mcp`,
            one runtime session per MCP session).
        host: HTTP bind address.
        port: HTTP port.
    """
    # Imported here so that loading an environment does not pay for the SDK.
    from tasks.runtime.mcp_exposure import build_mcp_server

    server = build_mcp_server(environment)
    if transport == "stdio":
        server.run("stdio")
    else:
        name = environment.spec.name
        print(f"serving {name} at http://{host}:{port}/mcp", file=sys.stderr)
        server.run("streamable-http", host=host, port=port)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    confirm = (
        None
        if args.confirm_tools is None
        else [name for name in args.confirm_tools.split(",") if name]
    )
    with contextlib.ExitStack() as stack:
        try:
            output_dir = _local_output_dir(args.output_dir, args.name, stack)
            environment = open_environment(
                output_dir,
                args.name,
                simulation_time=args.simulation_time,
                seed=args.seed,
                confirm_tools=confirm,
                strict=not args.lenient,
                call_timeout_s=args.call_timeout,
                overlay=read_overlay(args.overlay) if args.overlay else None,
            )
        except (OSError, ValueError, SandboxSetupError) as exc:
            print(f"cannot load environment {args.name}: {exc}", file=sys.stderr)
            return 2
        _serve_until_closed(environment, args)
    return 0


def _local_output_dir(location: str, server: str, stack: contextlib.ExitStack) -> Path:
    """A local output directory to serve from: the folder itself, or for a URL a
    temporary folder (removed on exit) holding the server's files (every
    member's, for a fused name) staged from the store."""
    if not is_url(location):
        return Path(location)
    from tasks.store.staging import stage_server

    local = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="serve-")))
    layout = OutputLayout.at(location)
    copied = {
        path
        for name in (members(server) if is_fused(server) else (server,))
        for path in stage_server(layout, name, local)
    }
    print(f"staged {len(copied)} file(s) of {server} from {location}", file=sys.stderr)
    return local


def _serve_until_closed(
    environment: SandboxedEnvironment, args: argparse.Namespace
) -> None:
    with environment:
        for issue in environment.issues:
            print(f"data issue: {issue}", file=sys.stderr)
        serve(environment, args.transport, host=args.host, port=args.port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tasks.runtime.serve",
        description="Serve a generated environment as an MCP server.",
    )
    parser.add_argument(
        "name",
        help="server name, e.g. DentalAppointments, or a fused name, e.g. "
        "DentalAppointments_TreatmentBilling",
    )
    parser.add_argument("--output-dir", default="outputs", help="pipeline output root")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--simulation-time", default=DEFAULT_SIMULATION_TIME)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--confirm-tools",
        default=None,
        help="comma-separated write tools that need confirmation "
        "(default: the module's CONFIRM_TOOLS)",
    )
    parser.add_argument(
        "--call-timeout",
        type=float,
        default=DEFAULT_CALL_TIMEOUT_S,
        help="seconds one tool call may take before the sandboxed worker is "
        "killed and restarted",
    )
    parser.add_argument(
        "--overlay",
        type=Path,
        default=None,
        help="JSON file of table name -> rows that every new session starts "
        "with (a cross-domain task's records); diffs stay against the base",
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="serve despite data issues (each is printed on stderr)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())

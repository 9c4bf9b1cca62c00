"""The environment runtime: what generated MCP servers are written against.

Inputs: an `EnvironmentSpec` (derived from a blueprint), the generated data and one
tool body per tool. Output: an `Environment` that runs tool calls in isolated
sessions (tables keyed by primary id, authorization binding, a fixed simulation
clock, seeded ids, the confirmation pattern, one error convention, state hash and
diff), exposed over MCP by `tasks.runtime.mcp_exposure` and served by
`tasks.runtime.serve`. Tool bodies import only `Env` and `ToolError` from here.
No side effects at import; the MCP SDK is imported only by the exposure modules,
and `environment_spec` (with the blueprint and entity schemas it needs, which a
sandboxed worker never uses) on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tasks.runtime.data_checks import DataLoadError, check_rows
from tasks.runtime.database import Database, Transaction, data_paths
from tasks.runtime.environment import DEFAULT_SESSION, Environment
from tasks.runtime.implementations import (
    ImplementationError,
    load_implementations,
    signature_problems,
)
from tasks.runtime.session import Env, IdGenerator, Session, SimulationClock
from tasks.runtime.table import Table, ToolError

if TYPE_CHECKING:
    from tasks.runtime.spec import environment_spec

__all__ = [
    "DEFAULT_SESSION",
    "DataLoadError",
    "Database",
    "Env",
    "Environment",
    "IdGenerator",
    "ImplementationError",
    "Session",
    "SimulationClock",
    "Table",
    "ToolError",
    "Transaction",
    "check_rows",
    "data_paths",
    "environment_spec",
    "load_implementations",
    "signature_problems",
]


def __getattr__(name: str) -> Any:
    if name == "environment_spec":
        from tasks.runtime.spec import environment_spec

        return environment_spec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

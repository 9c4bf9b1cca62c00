"""s06 generator scripts: takes a model-written script, a table contract and the rows
of the tables it points into; returns the static problems of the script (it must
parse, name `input.json` and `output.json`, import only allowed standard modules,
reach no other module through attributes, dunders or names given as strings
(`code_escapes`), and avoid clock and unseeded randomness), the `SandboxRequest`
that runs it, and the problems of a finished run. Pure, no side effects (the caller
runs the request).

The script contract: the scratch directory holds `generate.py`, `input.json` (the
`TableContract` as JSON: table, kind, server, description, primary_key, columns
with type/range/enum/minimum/maximum/format/nullable/references/drawn_from, n,
seed, simulation_time, tables, constraints) and one copy `tables/<Table>.json`
(a JSON array of rows; changes to it are discarded) per table in `tables`; the script
writes `output.json`, a JSON array of flat row objects. It runs as
`python generate.py` without network or subprocesses, under the step's time and
memory limits.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from schemas.database import DataProblem, TableContract
from schemas.sandbox import SandboxRequest, SandboxResult
from tasks.core.code_escapes import escape_problems
from tasks.core.python_source import parse_python

SCRIPT_FILE = "generate.py"
INPUT_FILE = "input.json"
OUTPUT_FILE = "output.json"
TABLES_DIR = "tables"
ALLOWED_IMPORTS = frozenset(
    {
        "collections",
        "datetime",
        "decimal",
        "functools",
        "itertools",
        "json",
        "math",
        "operator",
        "random",
        "re",
        "statistics",
        "string",
        "uuid",
    }
)
NONDETERMINISTIC_CALLS = frozenset(
    {"uuid1", "uuid4", "now", "utcnow", "today", "SystemRandom", "urandom"}
)
STDERR_TAIL = 1500
_SCRATCH = re.compile(r"/(?:[^/\s\"']+/)*[^/\s\"']*sandbox[^/\s\"']*/scratch/")


def script_problems(script: str) -> list[str]:
    """Why a script cannot be run as a generator (empty when it can)."""
    try:
        tree = parse_python(script)
    except SyntaxError as exc:
        return [f"the script does not parse: {exc.msg} (line {exc.lineno})"]
    problems = []
    texts = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    for name in (INPUT_FILE, OUTPUT_FILE):
        if not any(name in text for text in texts):
            problems.append(
                f"the script never names {name}; it must read "
                f"{INPUT_FILE} and write {OUTPUT_FILE}"
            )
    for module in sorted(_imports(tree) - ALLOWED_IMPORTS):
        problems.append(
            f"the script imports {module}; allowed modules: "
            f"{', '.join(sorted(ALLOWED_IMPORTS))}"
        )
    problems += escape_problems(tree)
    for call in sorted(_calls(tree) & NONDETERMINISTIC_CALLS):
        problems.append(
            f"the script calls {call}(), which differs between runs; derive ids and "
            "values from random.Random(spec['seed']) and times from "
            "spec['simulation_time']"
        )
    return problems


def script_request(
    script: str,
    contract: TableContract,
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    timeout_s: float,
    memory_mb: int,
) -> SandboxRequest:
    """The sandboxed run of a generator script.

    Args:
        script: The generator program.
        contract: The table contract, written as `input.json`.
        tables: Rows of each table in `contract.tables`, by name.
        timeout_s: Wall-clock limit (also the CPU-seconds limit, rounded up).
        memory_mb: Address-space limit.

    Returns:
        The request; it collects `output.json`.
    """
    files = {
        SCRIPT_FILE: script,
        INPUT_FILE: json.dumps(contract.model_dump(mode="json"), indent=2),
    }
    for name in contract.tables:
        files[f"{TABLES_DIR}/{name}.json"] = json.dumps(list(tables.get(name, ())))
    return SandboxRequest(
        argv=("python", SCRIPT_FILE),
        files=files,
        timeout_s=timeout_s,
        cpu_s=max(1, math.ceil(timeout_s)),
        memory_mb=memory_mb,
        collect=(OUTPUT_FILE,),
    )


def run_problems(result: SandboxResult) -> list[DataProblem]:
    """Why a finished run produced no usable output (empty when it exited 0).

    Scratch-directory paths are cut from the text, so the same failure reads the
    same on every run.
    """
    if result.ok:
        return []
    message = result.message
    tail = result.stderr.strip()[-STDERR_TAIL:]
    if tail and result.status == "exit_error":
        message += f"\nstderr (end):\n{tail}"
    return [DataProblem(kind="script_failed", message=_SCRATCH.sub("", message))]


def output_text(result: SandboxResult) -> str | None:
    """The text of `output.json` after a run, if the script wrote it."""
    return result.files.get(OUTPUT_FILE)


def _imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add((node.module or "").split(".")[0] if not node.level else "")
    found.discard("")
    return found


def _calls(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                names.add(func.attr)
            elif isinstance(func, ast.Name):
                names.add(func.id)
    return names

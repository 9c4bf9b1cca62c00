"""The one cache policy of the pipeline, and code versions for cache keys.

Input: a task's `work: WorkItem` parameter; the name of a step module. Output:
`artifact_cache_key`, a Prefect `cache_key_fn` that is the hash of the work item
(input artifact hashes, parameters hash, model id, prompt hashes, code version), and
`code_version`, a hash over the schema version and the source of every project
module (`tasks`, `schemas`) in the step module's static import closure. Prefect's
TASK_SOURCE policy cannot see prompt files or helper modules, which is why it is
not used; prompt files are hashed separately, through the work item's prompt
hashes. Side effects: reads module source files (once per process per root).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from schemas.artifact import WorkItem
from schemas.base import SCHEMA_VERSION, sha256_hex
from tasks.core.ast_parse import parse_python

# The packages whose modules are part of a code version. `flows` imports steps,
# never the other way round, so it cannot be in a step's closure.
PROJECT_PACKAGES = ("tasks", "schemas")


class ModuleSource(NamedTuple):
    text: str
    is_package: bool


SourceFinder = Callable[[str], ModuleSource | None]


def artifact_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn: the hash of the task's `work` parameter."""
    work = parameters["work"]
    if not isinstance(work, WorkItem):
        raise TypeError(
            f"cached steps take a WorkItem 'work' parameter, got {type(work)}"
        )
    return work.cache_key


@functools.cache
def code_version(module: str) -> str:
    """Code version of a step module: its import closure within the project."""
    return closure_version(module, project_source)


def closure_version(root: str, find: SourceFinder) -> str:
    """Hash of the schema version and the sources of `root`'s import closure."""
    sources = import_closure(root, find)
    parts = [f"schema={SCHEMA_VERSION}"]
    parts += [f"{name}\n{sources[name].text}" for name in sorted(sources)]
    return sha256_hex("\n".join(parts))[:16]


def import_closure(root: str, find: SourceFinder) -> dict[str, ModuleSource]:
    """Every module `root` imports, directly or not, that `find` knows, by name.

    Args:
        root: dotted name of the starting module.
        find: the source of a module, or None for modules outside the project.

    Raises:
        ModuleNotFoundError: `find` does not know `root`.
    """
    find = functools.cache(find)  # each name is looked up once per closure
    if find(root) is None:
        raise ModuleNotFoundError(f"no project module named {root!r}")
    found: dict[str, ModuleSource] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        if name in found or (source := find(name)) is None:
            continue
        found[name] = source
        # CPython 3.11's ast.parse is not thread-safe (items on a worker compute
        # code versions in several threads at once): parse under the shared lock.
        tree = parse_python(source.text)
        pending += _imported(tree, name, source.is_package, find)
    return found


def _imported(
    tree: ast.Module, name: str, is_package: bool, find: SourceFinder
) -> Iterator[str]:
    """Modules executed by the imports anywhere in `tree` (functions included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _with_parents(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(node, name, is_package)
            if base is None:
                continue
            yield from _with_parents(base)
            yield from _submodules(base, node.names, find)


def _from_base(node: ast.ImportFrom, name: str, is_package: bool) -> str | None:
    """The absolute module a `from ... import` names (relative ones resolved)."""
    if node.level == 0:
        return node.module
    package = name if is_package else name.rpartition(".")[0]
    parts = package.split(".") if package else []
    if node.level - 1 > len(parts):
        return None
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return ".".join(p for p in (base, node.module) if p) or None


def _submodules(base: str, names: list[ast.alias], find: SourceFinder) -> Iterator[str]:
    """`from pkg import name` imports submodule `pkg.name` when there is one."""
    package = find(base)
    if package is None or not package.is_package:
        return
    for alias in names:
        if alias.name != "*" and find(f"{base}.{alias.name}") is not None:
            yield f"{base}.{alias.name}"


def _with_parents(name: str) -> list[str]:
    """Importing `a.b.c` runs `a`, `a.b` and `a.b.c`."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def project_source(name: str) -> ModuleSource | None:
    """The source of a module of the project's packages, None for any other."""
    if name.split(".")[0] not in PROJECT_PACKAGES:
        return None
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    is_package = spec.submodule_search_locations is not None
    return ModuleSource(Path(spec.origin).read_text(), is_package)

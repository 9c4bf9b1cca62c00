"""Everything the package imports at run time is a declared dependency."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

from tests.conftest import REPO

PACKAGES = ("flows", "tasks", "schemas", "deployments")


def _third_party_imports() -> dict[str, str]:
    """Top-level module -> first file importing it, for non-stdlib imports."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                for name in names:
                    top = name.split(".")[0]
                    if top and top not in sys.stdlib_module_names:
                        found.setdefault(top, str(path.relative_to(REPO)))
    return {m: f for m, f in found.items() if m not in PACKAGES}


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = {
        re.split(r"[<>=!~\[; ]", dep, maxsplit=1)[0] for dep in project["dependencies"]
    }
    return {_normal(name) for name in names}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_run_time_import_is_a_declared_dependency():
    """A module imported by flows/, tasks/, schemas/ or deployments/ comes from a
    distribution listed in [project].dependencies, not only from the test extra or
    a transitive install."""
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = {
        module: (where, distributions.get(module))
        for module, where in _third_party_imports().items()
        if not declared & {_normal(d) for d in distributions.get(module, [module])}
    }
    assert undeclared == {}

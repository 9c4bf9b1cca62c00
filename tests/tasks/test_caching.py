"""Code versions follow a step module's real import closure, and a work item is
keyed on what its task reads (s01: the run seed)."""

from __future__ import annotations

import json

import pytest
import yaml

from flows.cli import main
from tasks.caching import (
    ModuleSource,
    closure_version,
    code_version,
    import_closure,
    project_source,
)
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG

FAKE = {
    "pkg": ModuleSource('"""A package."""\n', is_package=True),
    "pkg.root": ModuleSource(
        "import json\n\ndef run():\n    from . import helper\n    return helper\n",
        is_package=False,
    ),
    "pkg.helper": ModuleSource("from .sub.deep import VALUE\n", is_package=False),
    "pkg.sub": ModuleSource("", is_package=True),
    "pkg.sub.deep": ModuleSource("from pkg.sub import other\nVALUE = 1\n", False),
    "pkg.sub.other": ModuleSource("OTHER = 2\n", is_package=False),
    "pkg.unused": ModuleSource("UNUSED = 3\n", is_package=False),
}


def _finder(sources: dict[str, ModuleSource]):
    return sources.get


def test_s09_closure_contains_the_helpers_it_imports_deep_down():
    """s09 reaches naming, policy, python_source, entities and data_checks."""
    closure = import_closure("tasks.server_implementation", project_source)
    assert {
        "tasks.core.naming",
        "tasks.core.policy",
        "tasks.core.python_source",
        "tasks.core.entities",
        "tasks.runtime.data_checks",
        "tasks.items",
        "schemas.server",
    } <= closure.keys()


def test_s05_closure_contains_naming_and_not_modules_it_does_not_import():
    """s05 reaches tasks.core.naming but no other step, core module or flow."""
    closure = import_closure("tasks.tool_list_formulation", project_source)
    assert "tasks.core.naming" in closure
    assert not closure.keys() & {
        "tasks.core.policy",
        "tasks.core.python_source",
        "tasks.server_implementation",
        "tasks.domain_expansion",
    }
    assert all(name.split(".")[0] in ("tasks", "schemas") for name in closure)


def test_closure_follows_function_level_relative_and_submodule_imports():
    """A relative import in a function, `from pkg import submodule` and parent
    packages count; third-party and unimported modules do not."""
    closure = import_closure("pkg.root", _finder(FAKE))
    assert sorted(closure) == [
        "pkg",
        "pkg.helper",
        "pkg.root",
        "pkg.sub",
        "pkg.sub.deep",
        "pkg.sub.other",
    ]


def test_editing_a_module_in_the_closure_changes_the_code_version():
    """An edit deep in the closure changes the version; an edit outside does not."""
    before = closure_version("pkg.root", _finder(FAKE))
    deep_edit = FAKE | {"pkg.sub.other": ModuleSource("OTHER = 4\n", False)}
    outside_edit = FAKE | {"pkg.unused": ModuleSource("UNUSED = 5\n", False)}
    assert closure_version("pkg.root", _finder(deep_edit)) != before
    assert closure_version("pkg.root", _finder(outside_edit)) == before
    assert closure_version("pkg.root", _finder(dict(FAKE))) == before


def test_closure_of_an_unknown_root_is_an_error():
    """A root the finder does not know is named in the error, not an empty hash."""
    with pytest.raises(ModuleNotFoundError, match="pkg.missing"):
        import_closure("pkg.missing", _finder(FAKE))


def _run_s01(tmp_path, out, seed: int) -> dict:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    data["run"]["seed"] = seed
    config, report = tmp_path / f"config-{seed}.yaml", tmp_path / f"run-{seed}.json"
    config.write_text(yaml.safe_dump(data))
    args = ["--config", str(config), "--output-dir", str(out), "--step", "s01"]
    assert main(["run", *args, "--report-json", str(report)]) == 0
    return json.loads(report.read_text())["steps"]["s01_domain_expansion"]


@pytest.mark.slow
def test_a_changed_run_seed_reruns_the_s01_expansion_calls(prefect_harness, tmp_path):
    """Only the seed changes: every expansion item misses the cache and asks again."""
    out = tmp_path / "out"
    first = _run_s01(tmp_path, out, seed=7)
    second = _run_s01(tmp_path, out, seed=8)
    assert (first["cached"], second["ok"]) == (0, first["ok"])
    assert first["llm_calls"] > 0
    assert second["llm_calls"] == first["llm_calls"]
    # the seed list and the final topics read no seed and get the same inputs
    assert second["cached"] == 2


def _run_until_s05(config, out, report) -> dict:
    args = ["--config", str(config), "--output-dir", str(out), "--until", "s05"]
    assert main(["run", *args, "--report-json", str(report)]) == 0
    return json.loads(report.read_text())["steps"]


@pytest.fixture
def fresh_code_versions():
    code_version.cache_clear()
    yield
    code_version.cache_clear()


@pytest.mark.slow
def test_an_edit_deep_in_a_closure_reruns_exactly_the_items_whose_tasks_import_it(
    prefect_harness, tmp_path, monkeypatch, fresh_code_versions
):
    """tasks.core.entities is imported by the s02, s04 and s05 task modules (not
    by s01's or s03's): after an edit to it, exactly their items run again."""
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    config, out = tmp_path / "config.yaml", tmp_path / "out"
    config.write_text(yaml.safe_dump(data))
    first = _run_until_s05(config, out, tmp_path / "first.json")

    def edited(name: str) -> ModuleSource | None:
        found = project_source(name)
        if name == "tasks.core.entities" and found is not None:
            return found._replace(text=found.text + "\n# an edit\n")
        return found

    monkeypatch.setattr("tasks.caching.project_source", edited)
    code_version.cache_clear()
    second = _run_until_s05(config, out, tmp_path / "second.json")
    for step in ("s01_domain_expansion", "s03_entity_graph"):
        assert second[step]["cached"] == second[step]["ok"] == first[step]["ok"]
        assert second[step]["llm_calls"] == 0
    for step in (
        "s02_entity_extraction",
        "s04_blueprint_generation",
        "s05_tool_list_formulation",
    ):
        assert second[step]["cached"] == 0, step
        assert second[step]["ok"] == first[step]["ok"], step
        assert second[step]["llm_calls"] == first[step]["llm_calls"], step
    assert second["s04_blueprint_generation"]["llm_calls"] > 0

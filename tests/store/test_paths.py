"""Tests of the output layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.store.paths import OutputLayout


def test_layout_matches_the_reference_output_tree(tmp_path: Path) -> None:
    """Exports sit at the root; internal files under .agentskiller."""
    layout = OutputLayout(tmp_path)
    assert layout.domain_topics == tmp_path / "domain_topics.json"
    assert layout.entities == tmp_path / "entities.json"
    assert layout.entity_graph == tmp_path / "entity_graph.json"
    assert layout.blueprints == tmp_path / "blueprints.json"
    assert layout.tool_list("Bank") == tmp_path / "tool_lists" / "Bank.json"
    internal = tmp_path / ".agentskiller"
    assert layout.prefect_results_dir == internal / "prefect-results"
    assert layout.state_file == internal / "state.json"
    assert (
        layout.object_path("ab" * 32)
        == internal / "objects" / "ab" / f"{'ab' * 32}.json"
    )
    assert layout.manifest_path("s01_domain_expansion") == (
        internal / "steps" / "s01_domain_expansion.json"
    )
    with pytest.raises(ValueError, match="plain file name"):
        layout.tool_list("../Bank")


def test_relpath_is_posix_and_refuses_paths_outside_the_root(tmp_path: Path) -> None:
    """relpath gives root-relative POSIX paths and rejects foreign absolute paths."""
    layout = OutputLayout(tmp_path / "out")
    assert layout.relpath(layout.tool_list("Bank")) == "tool_lists/Bank.json"
    assert layout.relpath(Path("blueprints.json")) == "blueprints.json"
    with pytest.raises(ValueError, match="not inside"):
        layout.relpath(tmp_path / "elsewhere.json")
    with pytest.raises(ValueError, match="inside"):
        layout.export_path("/etc/passwd")

"""Tests of atomic file writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.store.atomic import write_json_atomic, write_text_atomic


def test_json_write_is_utf8_with_final_newline_and_leaves_no_temp(
    tmp_path: Path,
) -> None:
    """write_json_atomic keeps non-ASCII text, ends with a newline, cleans up."""
    target = tmp_path / "nested" / "data.json"
    write_json_atomic(target, {"b": 1, "a": "café"}, sort_keys=True)
    assert target.read_text(encoding="utf-8") == '{\n  "a": "café",\n  "b": 1\n}\n'
    assert [p.name for p in target.parent.iterdir()] == ["data.json"]


def test_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    """A value that cannot be serialised leaves the old content and no temp file."""
    target = tmp_path / "data.json"
    write_text_atomic(target, "old\n")
    with pytest.raises(TypeError):
        write_json_atomic(target, {"bad": object()})
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]

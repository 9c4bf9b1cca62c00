"""Tests of atomic file writes."""

from __future__ import annotations

import json
import os
import stat
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


def test_indented_json_is_the_text_the_json_module_writes(tmp_path: Path) -> None:
    """The fast writer's text equals `json.dumps(indent=2, ensure_ascii=False)`
    (keys sorted by code point, nested empties, non-ASCII kept), and values the
    fast encoder refuses (integer keys, integers beyond 64 bits) are still
    written the way `json` writes them."""
    data = {
        "é": [1, 2.5, None, True, {"z": [], "a": {}}],
        "b": "naïve ☃",
        "A": -0.0,
        "nested": {"k2": [{"x": "y"}], "k1": 10**12},
    }
    target = tmp_path / "data.json"
    for sort_keys in (True, False):
        write_json_atomic(target, data, sort_keys=sort_keys)
        expected = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=sort_keys)
        assert target.read_text(encoding="utf-8") == expected + "\n"
    for odd in ({1: "integer key"}, {"big": 2**70}):
        write_json_atomic(target, odd, sort_keys=True)
        expected = json.dumps(odd, indent=2, ensure_ascii=False, sort_keys=True)
        assert target.read_text(encoding="utf-8") == expected + "\n"


def test_written_files_are_readable_whatever_the_umask(tmp_path: Path) -> None:
    """Output files are 0644 even under a strict umask (the sandbox's user reads
    them), and each write leaves no temporary file behind."""
    old = os.umask(0o077)
    try:
        for i in range(3):
            write_text_atomic(tmp_path / "out" / "file.txt", f"v{i}\n")
    finally:
        os.umask(old)
    target = tmp_path / "out" / "file.txt"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]

"""Tests of the record of the last run's output directory."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tasks.settings import Settings, user_state_dir
from tasks.store.last_run import last_output_dir, record_last_output_dir


def test_the_last_recorded_output_dir_wins(tmp_path: Path) -> None:
    """Each run start overwrites the record; reading gives the latest."""
    state = tmp_path / "state"
    assert last_output_dir(state) is None
    record_last_output_dir(tmp_path / "first", state)
    record_last_output_dir(tmp_path / "second", state)
    assert last_output_dir(state) == tmp_path / "second"


def test_an_unwritable_state_folder_is_a_warning_not_a_failed_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A state folder that cannot be created is logged, and nothing is recorded."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="tasks.store.last_run"):
        record_last_output_dir(tmp_path / "out", blocker / "state")
    assert "--output-dir" in caplog.text
    assert last_output_dir(blocker / "state") is None


def test_a_damaged_record_reads_as_no_record(tmp_path: Path) -> None:
    """A truncated or foreign file is ignored rather than failing `status`."""
    (tmp_path / "last-run.json").write_text('{"output_dir": ')
    assert last_output_dir(tmp_path) is None
    (tmp_path / "last-run.json").write_text('["not", "a", "record"]')
    assert last_output_dir(tmp_path) is None


def test_the_state_folder_follows_the_setting_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AGENTSKILLER_STATE_DIR wins; else $XDG_STATE_HOME/agentskiller."""
    monkeypatch.setenv("AGENTSKILLER_STATE_DIR", str(tmp_path / "mine"))
    assert user_state_dir(Settings()) == tmp_path / "mine"
    monkeypatch.delenv("AGENTSKILLER_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert user_state_dir(Settings()) == tmp_path / "xdg" / "agentskiller"

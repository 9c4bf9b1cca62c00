"""Tests of process settings and the environment copy."""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import pytest

from tasks.settings import (
    GC_YOUNG_THRESHOLD,
    PREFECT_DEFAULTS,
    Settings,
    environment,
    prepare_prefect_environment,
    tune_garbage_collection,
)


def test_settings_read_prefixed_environment_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """AGENTSKILLER_* variables and ./.env configure Settings; others are ignored."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTSKILLER_CONFIG", raising=False)
    monkeypatch.delenv("AGENTSKILLER_LOG_LEVEL", raising=False)
    monkeypatch.setenv("AGENTSKILLER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DATA_DIR", "/wrong")
    (tmp_path / ".env").write_text("AGENTSKILLER_LOG_LEVEL=DEBUG\n", encoding="utf-8")
    settings = Settings()
    assert settings.data_dir == tmp_path / "data"
    assert settings.config is None
    assert settings.log_level == "DEBUG"


def test_environment_is_a_copy_with_dotenv_values_underneath(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """environment() copies os.environ; a .env file only fills unset variables."""
    monkeypatch.setenv("OPENAI_API_KEY", "from-process")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "OPENAI_API_KEY=from-file\nOPENAI_BASE_URL=http://127.0.0.1:9/v1\n",
        encoding="utf-8",
    )
    env = environment(dotenv)
    assert env["OPENAI_API_KEY"] == "from-process"
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"
    env["OPENAI_API_KEY"] = "changed"
    assert environment()["OPENAI_API_KEY"] == "from-process"
    assert "OPENAI_BASE_URL" not in environment(tmp_path / "missing.env")


def test_prepare_prefect_environment_quiets_only_what_the_user_left_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Defaults fill unset variables; instructor's duplicate retry errors go quiet."""
    for name in PREFECT_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANCEDB_LOG", "debug")
    retry_log = logging.getLogger("instructor.v2.retry")
    original = retry_log.level
    try:
        retry_log.setLevel(logging.NOTSET)
        prepare_prefect_environment()
        assert environment()["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
        assert environment()["LANCEDB_LOG"] == "debug"
        assert not retry_log.isEnabledFor(logging.ERROR)
        retry_log.setLevel(logging.INFO)
        prepare_prefect_environment()
        assert retry_log.level == logging.INFO
    finally:
        retry_log.setLevel(original)


def test_garbage_collection_is_tuned_for_a_run_and_keeps_a_raised_threshold() -> None:
    """A run freezes what is imported and collects the young generation less
    often; a threshold set higher already is left as it is."""
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        tune_garbage_collection()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
        gc.set_threshold(GC_YOUNG_THRESHOLD * 5, 10, 10)
        tune_garbage_collection()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD * 5, 10, 10)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

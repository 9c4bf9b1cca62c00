"""Tests of process settings and the environment copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.settings import Settings, environment


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

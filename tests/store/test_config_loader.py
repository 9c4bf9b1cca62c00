"""Tests of configuration loading: error messages, overrides, path resolution."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from schemas.config import PipelineConfig, StepsConfig
from tasks.store.config_loader import (
    ConfigError,
    load_config,
    resolve_cassette,
    resolve_output_dir,
    resolve_prompt_overrides,
    resolve_results_storage,
    with_overrides,
)

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """\
llm:
  roles:
    textual: {model: small-text}
    coding: {model: small-code}
"""


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> ConfigError:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    return info.value


def test_minimal_config_loads_with_defaults_and_a_stable_hash(tmp_path: Path) -> None:
    """A config naming only the two models loads; equal files hash equally."""
    first = load_config(_write(tmp_path, MINIMAL, "a.yaml"))
    second = load_config(_write(tmp_path, MINIMAL, "b.yaml"))
    assert first.config.llm.roles["coding"].model == "small-code"
    assert first.config.steps == StepsConfig()
    assert first.config_dir == tmp_path
    assert first.config_hash == second.config_hash
    assert len(first.config_hash) == 64


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    """A YAML syntax error reports where it is."""
    error = _error(tmp_path, MINIMAL + "run:\n  seed: [1, 2\n  name: x\n")
    assert "is not valid YAML" in str(error)
    assert "line 7, column" in str(error)


def test_duplicate_key_is_refused_with_its_line(tmp_path: Path) -> None:
    """A key given twice is an error instead of silently keeping the last value."""
    error = _error(tmp_path, MINIMAL + "run:\n  seed: 1\n  seed: 2\n")
    assert "duplicate key 'seed'" in str(error)
    assert "line 7" in str(error)


def test_unknown_key_names_dotted_path_line_and_allowed_keys(tmp_path: Path) -> None:
    """A misspelt key is reported with its path, line and the valid keys there."""
    text = MINIMAL + (
        "steps:\n  s04_blueprint_generation:\n    max_relationship_per_blueprint: 3\n"
    )
    error = _error(tmp_path, text)
    message = str(error)
    assert (
        "steps.s04_blueprint_generation.max_relationship_per_blueprint (line 7): "
        "unknown key; allowed keys at steps.s04_blueprint_generation: role, model, "
        "target_blueprints_per_entity, max_peripheral_entities, "
        "min_functions_per_blueprint, max_relationships_per_blueprint, "
        "max_feedback_attempts, fixup"
    ) in message
    assert error.problems == (
        (
            "steps.s04_blueprint_generation.max_relationship_per_blueprint",
            error.problems[0][1],
        ),
    )


def test_unknown_top_level_key_lists_the_sections(tmp_path: Path) -> None:
    """An unknown section lists the four real ones."""
    error = _error(tmp_path, MINIMAL + "workflow:\n  max_workers: 4\n")
    assert (
        "workflow (line 5): unknown key; allowed keys at the top level: "
        "run, llm, embeddings, steps"
    ) in str(error)


def test_wrong_type_names_expected_type_and_value(tmp_path: Path) -> None:
    """A value of the wrong type says what type was expected and what was found."""
    text = MINIMAL + (
        "steps:\n  s04_blueprint_generation:\n"
        "    max_relationships_per_blueprint: three\nrun: [1]\n"
    )
    error = _error(tmp_path, text)
    message = str(error)
    assert "2 problems" in message
    assert (
        "steps.s04_blueprint_generation.max_relationships_per_blueprint (line 7): "
        "wrong type: expected an integer, got 'three'"
    ) in message
    assert (
        "run (line 8): wrong type: expected a mapping with keys name, seed" in message
    )


def test_invalid_role_name_and_literal_value_are_explained(tmp_path: Path) -> None:
    """A misspelt role key and a wrong mode show the allowed values."""
    text = (
        "llm:\n  mode: rec\n  roles:\n    texual: {model: a}\n    coding: {model: b}\n"
    )
    message = str(_error(tmp_path, text))
    assert "llm.mode (line 2): Input should be 'live', 'record' or 'replay'" in message
    assert "got 'rec'" in message
    assert "llm.roles.texual (line 4): invalid key 'texual'" in message


def test_missing_llm_section_is_reported(tmp_path: Path) -> None:
    """The required llm section cannot be left out."""
    error = _error(tmp_path, "run:\n  seed: 3\n")
    assert error.problems == (("llm", "required key is missing"),)


def test_missing_file_and_non_mapping_documents_are_errors(tmp_path: Path) -> None:
    """A missing file, an empty file and a list document each give a ConfigError."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    assert "an empty document" in str(_error(tmp_path, "# nothing\n"))
    assert "top level must be a mapping" in str(_error(tmp_path, "- a\n- b\n"))


def test_replay_mode_requires_a_cassette(tmp_path: Path) -> None:
    """Replay without a cassette, or with a missing cassette file, is refused."""
    no_cassette = MINIMAL.replace("llm:\n", "llm:\n  mode: replay\n")
    message = str(_error(tmp_path, no_cassette))
    assert "llm (line 1): llm.cassette is required when llm.mode is 'replay'" in message

    absent = MINIMAL.replace("llm:\n", "llm:\n  mode: replay\n  cassette: c.json\n")
    error = _error(tmp_path, absent)
    assert error.problems[0][0] == "llm.cassette"
    assert str(tmp_path / "c.json") in str(error)


def test_cassette_and_prompts_resolve_relative_to_the_config_file(
    tmp_path: Path,
) -> None:
    """Relative cassette and prompt folders are found next to the config file."""
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "cassette.json").write_text("{}", encoding="utf-8")
    text = MINIMAL.replace(
        "llm:\n",
        "llm:\n  mode: replay\n  cassette: cassette.json\n  prompt_overrides: p\n",
    )
    loaded = load_config(_write(tmp_path / "demo", text))
    assert resolve_cassette(loaded) == tmp_path / "demo" / "cassette.json"
    assert resolve_prompt_overrides(loaded) == tmp_path / "demo" / "p"
    live = load_config(_write(tmp_path, MINIMAL))
    assert resolve_cassette(live) is None
    assert resolve_prompt_overrides(live) is None


def test_output_dir_and_results_storage_resolve_against_cwd_or_data_dir(
    tmp_path: Path,
) -> None:
    """Relative outputs go under the data dir if set, else the working directory."""
    loaded = load_config(_write(tmp_path, MINIMAL))
    cwd = tmp_path / "work"
    assert resolve_output_dir(loaded, cwd) == cwd / "outputs"
    data = tmp_path / "data"
    assert resolve_output_dir(loaded, cwd, data_dir=data) == data / "outputs"
    assert resolve_results_storage(loaded, cwd) == str(
        cwd / "outputs" / ".agentskiller" / "prefect-results"
    )
    moved = with_overrides(
        loaded,
        output_dir=str(tmp_path / "abs"),
        overrides={"run.results_storage": "s3://bucket/results"},
    )
    assert resolve_output_dir(moved, cwd) == tmp_path / "abs"
    assert resolve_results_storage(moved, cwd) == "s3://bucket/results"
    local = with_overrides(loaded, overrides={"run.results_storage": "cache"})
    assert resolve_results_storage(local, cwd) == str(cwd / "cache")


def test_with_overrides_revalidates_and_rehashes(tmp_path: Path) -> None:
    """Overrides change the hash; None changes nothing; bad overrides are refused."""
    loaded = load_config(_write(tmp_path, MINIMAL))
    assert with_overrides(loaded, None) is loaded
    small = with_overrides(
        loaded, overrides={"steps.s01_domain_expansion.target_domain_number": "20"}
    )
    assert small.config.steps.s01_domain_expansion.target_domain_number == 20
    assert small.config_hash != loaded.config_hash
    with pytest.raises(ConfigError, match="steps.s01_domain_expansion.target: unknown"):
        with_overrides(loaded, overrides={"steps.s01_domain_expansion.target": 5})


def _assert_every_key_written(model: type[BaseModel], data: Any, where: str) -> None:
    assert isinstance(data, dict), where
    assert list(data) == list(model.model_fields), where
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _assert_every_key_written(annotation, data[name], f"{where}.{name}")


def test_reference_config_loads_and_writes_out_every_key() -> None:
    """configs/config.yaml is valid, complete, and holds the reference sizes."""
    path = REPO / "configs" / "config.yaml"
    loaded = load_config(path)
    config = loaded.config
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    _assert_every_key_written(PipelineConfig, raw, "config")
    for role in raw["llm"]["roles"].values():
        assert list(role) == list(type(config.llm.roles["textual"]).model_fields)

    assert config.steps == StepsConfig()
    assert len(config.steps.s01_domain_expansion.seed_domains) == 15
    assert config.llm.mode == "live"
    assert config.llm.timeout_s == 600
    assert config.llm.transport_retries == 3
    assert config.run.max_concurrency == config.llm.max_concurrency == 16
    assert config.run.simulation_time == "2025-01-23T15:00:00-05:00"
    textual, coding = config.llm.roles["textual"], config.llm.roles["coding"]
    assert (textual.model, textual.temperature) == ("gpt-5", 1.0)
    assert (coding.model, coding.temperature) == ("claude-opus-4-5-20251101", 0.0)
    assert {textual.api_key_env, coding.api_key_env} == {"OPENAI_API_KEY"}
    assert {textual.base_url_env, coding.base_url_env} == {"OPENAI_BASE_URL"}

"""The command line rejects bad input before any work starts, with a clear message."""

from __future__ import annotations

import pytest

from flows.cli import main
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG, REPO


def _write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def _demo_variant(tmp_path, old: str, new: str):
    """The demo config with one text replaced, its cassette path made absolute."""
    cassette = f"cassette: {DEMO_CASSETTE}"
    text = DEMO_CONFIG.read_text().replace(old, new)
    return _write(tmp_path, text.replace("cassette: demo/cassette", cassette))


def test_run_rejects_malformed_yaml_naming_file_and_line(tmp_path, capsys):
    """A YAML syntax error names the file and the line; exit code 2."""
    bad = _write(tmp_path, "run:\n  seed: [1, 2\nllm: {}\n")
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "line" in err


def test_run_rejects_unknown_key_naming_its_path(tmp_path, capsys):
    """An unknown key is named by its dotted path, with the allowed keys."""
    bad = _demo_variant(tmp_path, "relation_batch_size: 4", "relation_batch_sise: 4")
    assert main(["run", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "steps.s03_entity_graph.relation_batch_sise" in err
    assert "relation_batch_size" in err


def test_run_rejects_wrong_type(tmp_path, capsys):
    """A value of the wrong type names the key and the expected type."""
    bad = _demo_variant(
        tmp_path, "target_domain_number: 6", "target_domain_number: six"
    )
    assert main(["run", "--config", str(bad)]) == 2
    assert "steps.s01_domain_expansion.target_domain_number" in capsys.readouterr().err


def test_run_rejects_unknown_step_listing_valid_ones(capsys):
    """An unknown step name lists the valid steps; exit code 2."""
    assert main(["run", "--config", str(DEMO_CONFIG), "--step", "s99"]) == 2
    err = capsys.readouterr().err
    assert "s99" in err and "s04_blueprint_generation" in err


def test_real_model_config_without_key_says_how_to_set_one(monkeypatch, capsys):
    """The full-scale config with no API key explains the variable and the demo."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["run", "--config", str(REPO / "configs" / "config.yaml")]) == 2
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY" in err
    assert "configs/demo.yaml" in err


def test_list_steps_prints_every_step(capsys):
    """list-steps shows the five steps in order."""
    assert main(["list-steps"]) == 0
    out = capsys.readouterr().out
    positions = [out.index(f"s0{i}_") for i in range(1, 6)]
    assert positions == sorted(positions)


def test_status_of_an_empty_output_dir_shows_every_step_pending(tmp_path, capsys):
    """status works without Prefect and shows pending steps."""
    assert main(["status", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("pending") == 9


@pytest.mark.slow
def test_cli_run_writes_report_json_and_rerun_makes_zero_calls(
    prefect_harness, tmp_path, capsys
):
    """--report-json has llm_calls and per-step counts; a re-run calls nothing."""
    import json

    out = tmp_path / "out"
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    args = ["run", "--config", str(DEMO_CONFIG), "--output-dir", str(out)]
    assert main([*args, "--until", "s02", "--report-json", str(first)]) == 0
    assert main([*args, "--until", "s02", "--report-json", str(second)]) == 0
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a["llm_calls"] == 5  # 2 expansion calls + 2 entity batches + 1 re-ask
    assert b["llm_calls"] == 0
    for step in ("s01_domain_expansion", "s02_entity_extraction"):
        assert {"ok", "failed", "cached"} <= set(b["steps"][step])
        assert b["steps"][step]["cached"] == a["steps"][step]["ok"]
    assert main(["status", "--output-dir", str(out)]) == 0
    assert "s03_entity_graph" in capsys.readouterr().out
    assert main(["lineage", "entities.json", "--output-dir", str(out)]) == 0
    tree = capsys.readouterr().out
    assert "seed_domains" in tree and "entity_catalogue" in tree
    args = ["lineage", "domain:healthcare", "--output-dir", str(out), "--descendants"]
    assert main(args) == 0
    derived = capsys.readouterr().out
    assert "entity_batch batch-001" in derived and "entity Patient" in derived


def test_serve_env_of_an_unknown_server_says_what_is_missing(capsys):
    """serve-env names the environment it cannot load; exit code 2."""
    fixture = REPO / "tests" / "runtime" / "fixtures" / "dental"
    code = main(["serve-env", "NoSuchServer", "--output-dir", str(fixture)])
    assert code == 2
    assert "NoSuchServer" in capsys.readouterr().err

"""The command line rejects bad input before any work starts, with a clear message,
finds the output directory a reading command means, and lays out readable tables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import flows.cli_inspect
from flows.cli import main
from flows.cli_output import print_report
from tasks.steps import STEPS, StepInfo
from tasks.store.artifacts import ArtifactStore
from tasks.store.last_run import record_last_output_dir
from tasks.store.paths import OutputLayout
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG, REPO
from tests.store.test_lineage import Chain

LONG_NAME = "s99_a_step_whose_name_is_much_longer_than_any_real_one"


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
    """The full-scale config with no API key explains the variable and the demo,
    once, though every model role names the same variable."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert main(["run", "--config", str(REPO / "configs" / "config.yaml")]) == 2
    assert capsys.readouterr().err == (
        "error: llm.roles.assistant, llm.roles.coding, llm.roles.textual and "
        "llm.roles.user_simulator: environment variable "
        "OPENAI_API_KEY is not set; export it (local servers accept any value), or "
        "run the offline demo: agentskiller run --config configs/demo.yaml\n"
    )


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
    from tasks.steps import STEPS

    assert out.count("pending") == len(STEPS)
    assert all(info.name in out for info in STEPS)


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


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """An output directory holding a small lineage chain (no Prefect needed)."""
    out = tmp_path / "run"
    Chain(ArtifactStore(OutputLayout(out)))
    (out / "tool_lists").mkdir()
    (out / "tool_lists" / "PatientDentalCare.json").write_text("[]\n")
    return out


def test_lineage_of_an_output_file_finds_its_run_from_any_directory(
    run_dir, tmp_path, monkeypatch, capsys
):
    """An absolute output path needs no --output-dir: the run is found above it."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    target = run_dir / "tool_lists" / "PatientDentalCare.json"
    assert main(["lineage", str(target)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("blueprint PatientDentalCare  ")
    assert any(line.startswith("    domain dental_clinic  ") for line in lines)


def test_lineage_of_a_relative_path_walks_up_from_the_working_directory(
    run_dir, monkeypatch, capsys
):
    """Inside a run's folder, a relative file name resolves against that run."""
    monkeypatch.chdir(run_dir / "tool_lists")
    assert main(["lineage", "PatientDentalCare.json"]) == 0
    assert capsys.readouterr().out.startswith("blueprint PatientDentalCare  ")
    assert main(["lineage", "entity:Patient"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("entity Patient  ")
    assert captured.err == (
        f"reading {run_dir} (the run the working directory is in; "
        "use --output-dir to choose)\n"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{run}/tool_lists/Nope.json", "is not an output file of this run"),
        ("{run}/tool_lists/deadbeef", "is not an output file of this run"),
        ("deadbeef00", "no artifact with content hash starting 'deadbeef00'"),
        ("abc", "hash prefix 'abc' is too short"),
        ("entity:Nobody", "no artifact entity:Nobody"),
        ("{outside}/x.json", "is not inside an AgentSkiller output directory"),
    ],
)
def test_lineage_of_an_unknown_target_is_one_error_line_with_exit_2(
    run_dir, tmp_path, monkeypatch, capsys, target, message
):
    """Unknown files, hashes and kind:id names give `error: ...`, no traceback
    (after the note naming the folder searched, when no file path named it)."""
    monkeypatch.chdir(run_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.json").write_text("{}")
    typed = target.format(run=run_dir, outside=outside)
    assert main(["lineage", typed]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    *note, error = captured.err.splitlines()
    searched = f"reading {run_dir} (the run the working directory is in; use "
    assert note == ([] if "{" in target else [searched + "--output-dir to choose)"])
    assert error.startswith("error: ") and message in error


def test_a_closed_pipe_ends_the_command_quietly_with_exit_141(run_dir):
    """`agentskiller ... | head -1`: no BrokenPipeError traceback, status 141."""
    exported = run_dir / "tool_lists" / "PatientDentalCare.json"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has already gone when the command writes
    try:
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", "lineage", str(exported)],
            cwd=REPO,
            stdout=write_end,
            stderr=subprocess.PIPE,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.stderr == b""
    assert done.returncode == 141


def test_status_without_arguments_reads_the_last_runs_output(
    run_dir, tmp_path, monkeypatch, capsys
):
    """The folder the last run recorded is read, and the command says so."""
    monkeypatch.chdir(tmp_path)
    record_last_output_dir(run_dir)
    assert main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"reading {run_dir} (the last run's output; use --output-dir to choose)"
    )
    assert re.match(r"s04_blueprint_generation +done +1 +0$", lines[5])


def test_status_falls_back_to_outputs_in_the_working_directory(
    tmp_path, monkeypatch, capsys
):
    """With no run recorded, ./outputs is read and named."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTSKILLER_DATA_DIR", raising=False)
    (tmp_path / "outputs").mkdir()
    assert main(["status"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (
        f"reading {tmp_path / 'outputs'} (no run recorded; the default output "
        "folder; use --output-dir to choose)"
    )


def test_status_with_no_run_and_no_outputs_folder_says_what_to_pass(
    tmp_path, monkeypatch, capsys
):
    """Nothing to read is one `error:` line naming the options; exit code 2."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AGENTSKILLER_DATA_DIR", raising=False)
    assert main(["status"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: no output directory to read: no run has been recorded and "
        f"{tmp_path / 'outputs'} does not exist; pass --output-dir DIR or "
        "--config FILE\n"
    )


def _with_long_step(monkeypatch) -> None:
    long = StepInfo(
        "s99", LONG_NAME, "A Phase Name That Is Long", "described", True, "m:f"
    )
    monkeypatch.setattr(flows.cli_inspect, "STEPS", (*STEPS, long))


def test_list_steps_keeps_two_spaces_after_a_long_step_name(monkeypatch, capsys):
    """A step name longer than any other still leaves a gap before its phase."""
    _with_long_step(monkeypatch)
    assert main(["list-steps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ids = max(len(s.id) for s in STEPS)  # s14x and its kind are 4 characters
    assert lines[-1] == (
        f"{'s99':<{ids}}  {LONG_NAME}  A Phase Name That Is Long  yes  described"
    )
    phase = ids + 2 + len(LONG_NAME) + 2  # where every row's phase starts
    assert lines[0][phase:].startswith("phase")
    for line in lines[1:]:
        assert line[phase - 2 : phase] == "  " and line[phase] != " "


def test_status_keeps_two_spaces_after_a_long_step_name(tmp_path, monkeypatch, capsys):
    """status separates a long step name from its state."""
    _with_long_step(monkeypatch)
    assert main(["status", "--output-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(rf"{LONG_NAME}  pending +-  +-", lines[-1])
    assert lines[2].startswith("s01_domain_expansion" + " " * (len(LONG_NAME) - 18))


def test_run_summary_keeps_columns_apart_for_long_names_and_big_numbers(capsys):
    """The summary table separates a long step name and a wide count."""
    failure = {"reason": "invalid_output", "item_key": "x", "message": "bad\nmore"}
    long = {"reason": "validation_failed", "item_key": "y", "message": "z" * 200}
    empty = {"reason": "dependency_failed", "item_key": "w", "message": ""}
    report = {
        "status": "failed",
        "llm_calls": 3,
        "output_dir": "/out",
        "steps": {
            "s01": {
                "step": "s01_domain_expansion",
                "ok": 1,
                "failed": 0,
                "cached": 0,
                "llm_calls": 2,
                "note": "fine",
                "failures": [],
            },
            LONG_NAME: {
                "step": LONG_NAME,
                "ok": 123456,
                "failed": 1,
                "cached": 0,
                "llm_calls": 1,
                "note": "a long note " * 4,
                "failures": [failure, long, empty],
            },
        },
    }
    print_report(report)
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "step" + " " * (len(LONG_NAME) - 4) + (
        "      ok  failed  cached  calls  note"
    )
    assert (
        lines[4]
        == f"{LONG_NAME}  123456       1       0      1  "
        + ("a long note " * 4).rstrip()
    )
    assert lines[5] == "    - [invalid_output] x: bad"
    assert lines[6] == "    - [validation_failed] y: " + "z" * 157 + "..."
    assert lines[7] == "    - [dependency_failed] w: "


def test_status_lists_failed_items_and_the_step_the_last_run_stopped_in(
    tmp_path, capsys
):
    """A finished step's failed items are listed; a step whose last run stopped
    (no manifest written) shows as 'stopped' with the failures that stopped it."""
    from schemas.artifact import FailedItem, StepManifest
    from schemas.report import RunReport, StepReport
    from tasks.store.artifacts import ArtifactStore
    from tasks.store.atomic import write_json_atomic
    from tasks.store.paths import OutputLayout

    layout = OutputLayout(tmp_path)
    dropped = FailedItem(
        step="s04", item_key="Traveler-1", reason="invalid_output", message="bad"
    )
    broken = FailedItem(
        step="s09",
        item_key="CardServices",
        reason="machinery_error",
        message="building CardServices: the s09 harness cannot import pytest",
    )
    miss = FailedItem(
        step="s06",
        item_key="entity/Flight",
        reason="cassette_miss",
        message="no answer",
        retryable=True,
    )
    store = ArtifactStore(layout)
    for step, failed in (
        ("s04_blueprint_generation", (dropped,)),
        ("s09_mcp_server_implementation", (broken,)),
    ):
        store.write_manifest(
            StepManifest(step=step, config_hash="c", outputs=(), failed=failed)
        )
    stopped = StepReport(
        step="s06_database_generation", ok=3, failed=1, failures=(miss,)
    )
    report = RunReport(
        run_name="r",
        config_path="c.yaml",
        config_hash="c",
        output_dir=str(tmp_path),
        status="failed",
        error="step s06_database_generation stopped",
        llm_calls=0,
        steps={"s06_database_generation": stopped},
    )
    write_json_atomic(layout.reports_dir / "run.json", report.model_dump(mode="json"))
    assert main(["status", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"s06_database_generation\s+stopped\s+-\s+1", out)
    assert "s04  [invalid_output] Traveler-1: bad" in out
    assert "s06  [cassette_miss] entity/Flight: no answer" in out
    assert "s09  [machinery_error] CardServices: building CardServices" in out

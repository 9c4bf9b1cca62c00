"""Tests for loading an environment from an output directory and serving it."""

import json
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tasks.runtime.data_checks import DataLoadError
from tasks.runtime.implementations import ImplementationError
from tasks.runtime.serve import load_environment, main, tool_module_path
from tests.runtime import ANA, FIXTURE_DIR, HARBOR, SERVER, SIMULATION_TIME

REPO = Path(__file__).resolve().parents[2]


def test_stdio_server_lists_tools_and_serves_authorize_and_a_read_tool(environment):
    """The official client drives `python -m tasks.runtime.serve` over stdio."""
    parameters = StdioServerParameters(
        command=sys.executable,
        args=[
            "-m",
            "tasks.runtime.serve",
            SERVER,
            "--output-dir",
            str(FIXTURE_DIR),
            "--transport",
            "stdio",
            "--simulation-time",
            SIMULATION_TIME,
        ],
        cwd=REPO,
    )

    async def main_():
        with anyio.fail_after(60):
            async with Client(parameters) as client:
                tools = (await client.list_tools()).tools
                auth = await client.call_tool("authorize_patient", {"patient_id": ANA})
                clinics = await client.call_tool("list_clinics", {"city": "Porto"})
                missing = await client.call_tool(
                    "authorize_patient", {"patient_id": "x"}
                )
                return tools, auth, clinics, missing

    tools, auth, clinics, missing = anyio.run(main_)
    assert {t.name: t.input_schema for t in tools} == {
        t.name: t.parameters for t in environment.spec.tools
    }
    assert auth.structured_content == {"authorized": True, "patient_id": ANA}
    listed = json.loads(clinics.content[0].text)["clinics"]
    assert [c["clinic_id"] for c in listed] == [HARBOR]
    assert missing.is_error
    assert missing.content[0].text == "no Patient with patient_id 'x'"


def test_cli_reports_an_unknown_server_and_exits_with_2(capsys):
    """A load failure is one readable line on stderr, not a traceback."""
    status = main(["Nope", "--output-dir", str(FIXTURE_DIR)])
    assert status == 2
    assert capsys.readouterr().err == (
        "cannot load environment Nope: no blueprint for server Nope; servers: "
        "DentalAppointments\n"
    )


def test_confirmation_tools_come_from_the_module_unless_given():
    """`CONFIRM_TOOLS` in the module is the default; an explicit set wins."""
    declared = load_environment(FIXTURE_DIR, SERVER)
    overridden = load_environment(FIXTURE_DIR, SERVER, confirm_tools=())
    assert [t.name for t in declared.spec.tools if t.needs_confirmation] == [
        "book_appointment"
    ]
    assert not any(t.needs_confirmation for t in overridden.spec.tools)
    assert declared.spec.simulation_time == SIMULATION_TIME


def test_loading_refuses_broken_data_unless_lenient(output_dir: Path):
    """Strict loading names the problem; lenient loading keeps the issues."""
    path = output_dir / "database/outputs/entities/Clinic.json"
    path.write_text(json.dumps([{"clinic_id": "c1"}, {"clinic_id": "c1"}]))
    with pytest.raises(DataLoadError, match="'c1' is used by an earlier row"):
        load_environment(output_dir, SERVER)
    lenient = load_environment(output_dir, SERVER, strict=False)
    assert "duplicate_primary_key" in [i.kind for i in lenient.base.issues]


def test_loading_refuses_a_missing_tool_module(output_dir: Path):
    """Without `mcp_servers/<Server>.py` there is nothing to serve."""
    tool_module_path(output_dir, SERVER).unlink()
    with pytest.raises(ImplementationError, match="does not exist"):
        load_environment(output_dir, SERVER)

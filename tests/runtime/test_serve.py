"""Tests for loading an environment from an output directory and serving it."""

import json
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tasks.runtime.data_checks import DataLoadError
from tasks.runtime.implementations import ImplementationError
from tasks.runtime.mcp_exposure import SESSION_HEADER, SESSION_META_KEY
from tasks.runtime.serve import load_environment, main, tool_module_path
from tests.runtime import (
    ANA,
    ANA_BOOKED,
    ANA_CANCELLED,
    BOOK,
    FIXTURE_DIR,
    HARBOR,
    REPO,
    SERVER,
    SIMULATION_TIME,
    serve_arguments,
)

AUTHORIZE_ANA = ("authorize_patient", {"patient_id": ANA})
BOOK_CONFIRMED = ("book_appointment", {**BOOK, "confirm": True})
LIST_MINE = ("list_my_appointments", {})
NOT_AUTHORIZED = "not authorized: call authorize_patient first"
HOW_TO_NAME = ("query", "header", "meta")
"""The ways a client names its session: URL query parameter, HTTP header, `_meta`."""


def test_stdio_server_lists_tools_and_serves_authorize_and_a_read_tool(environment):
    """The official client drives `python -m tasks.runtime.serve` over stdio."""
    parameters = StdioServerParameters(
        command=sys.executable, args=serve_arguments("stdio"), cwd=REPO
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


def _run(scenario):
    async def bounded():
        with anyio.fail_after(60):
            return await scenario()

    return anyio.run(bounded)


async def _call_all(client, calls, meta=None):
    return [await client.call_tool(name, args, meta=meta) for name, args in calls]


def _appointment_ids(result) -> list[str]:
    return [a["appointment_id"] for a in result.structured_content["appointments"]]


@asynccontextmanager
async def _client_naming(url: str, session: str, how: str, mode: str):
    """An official client in `mode` whose calls name `session` the way `how`
    says; yields the client and the `meta` its calls must carry."""
    if how == "query":
        async with Client(f"{url}?session={session}", mode=mode) as client:
            yield client, None
    elif how == "header":
        async with httpx2.AsyncClient(headers={SESSION_HEADER: session}) as http:
            connection = streamable_http_client(url, http_client=http)
            async with Client(connection, mode=mode) as client:
                yield client, None
    else:
        async with Client(url, mode=mode) as client:
            yield client, {SESSION_META_KEY: session}


@pytest.mark.parametrize(
    ("mode", "version"), [("auto", "2026-07-28"), ("legacy", "2025-11-25")]
)
def test_a_new_http_client_gets_neither_the_authorization_nor_the_writes_of_another(
    http_server_url, mode, version
):
    """Two clients of `serve --transport http` in one mode are isolated.

    A authorizes and books; B, connected meanwhile, is not authorized and, once
    authorized as the same patient, does not see the booking. A keeps its state
    across calls (default mode: the session cookie; legacy: the MCP session).
    """

    async def scenario():
        async with Client(http_server_url, mode=mode) as a:
            a_results = await _call_all(a, [AUTHORIZE_ANA, BOOK_CONFIRMED, LIST_MINE])
            async with Client(http_server_url, mode=mode) as b:
                b_results = await _call_all(b, [LIST_MINE, AUTHORIZE_ANA, LIST_MINE])
            return a.protocol_version, a_results, b_results

    protocol, (_, booked, a_mine), (b_before, _, b_mine) = _run(scenario)
    assert protocol == version
    new_id = booked.structured_content["appointment"]["appointment_id"]
    assert new_id in _appointment_ids(a_mine)
    assert b_before.is_error and b_before.content[0].text == NOT_AUTHORIZED
    assert sorted(_appointment_ids(b_mine)) == sorted([ANA_BOOKED, ANA_CANCELLED])


@pytest.mark.parametrize("how", HOW_TO_NAME)
def test_a_client_that_names_a_session_shares_its_state(http_server_url, how):
    """A default-mode client and a legacy one naming one session share it."""
    session = f"shared-{how}"

    async def scenario():
        async with _client_naming(http_server_url, session, how, "auto") as (a, meta):
            booked = await _call_all(a, [AUTHORIZE_ANA, BOOK_CONFIRMED], meta)
        async with _client_naming(http_server_url, session, how, "legacy") as (c, meta):
            (mine,) = await _call_all(c, [LIST_MINE], meta)
        return booked[1], mine

    booked, mine = _run(scenario)
    assert not mine.is_error
    new_id = booked.structured_content["appointment"]["appointment_id"]
    assert new_id in _appointment_ids(mine)


@pytest.mark.parametrize("how", HOW_TO_NAME)
def test_clients_naming_different_sessions_are_isolated(http_server_url, how):
    """Two clients naming two sessions share neither authorization nor writes."""

    async def scenario():
        async with (
            _client_naming(http_server_url, f"left-{how}", how, "auto") as (a, a_meta),
            _client_naming(http_server_url, f"right-{how}", how, "auto") as (b, b_meta),
        ):
            booked = await _call_all(a, [AUTHORIZE_ANA, BOOK_CONFIRMED], a_meta)
            other = await _call_all(b, [LIST_MINE, AUTHORIZE_ANA, LIST_MINE], b_meta)
            (mine,) = await _call_all(a, [LIST_MINE], a_meta)
        return booked[1], other, mine

    booked, (b_before, _, b_mine), a_mine = _run(scenario)
    new_id = booked.structured_content["appointment"]["appointment_id"]
    assert new_id in _appointment_ids(a_mine)
    assert b_before.is_error and b_before.content[0].text == NOT_AUTHORIZED
    assert sorted(_appointment_ids(b_mine)) == sorted([ANA_BOOKED, ANA_CANCELLED])

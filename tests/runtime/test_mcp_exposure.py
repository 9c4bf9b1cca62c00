"""Tests for exposing an environment as an MCP server (in-memory and HTTP)."""

import json

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from schemas.environment import DatabaseDiff, TableDiff, ToolResult
from tasks.runtime.environment import Environment
from tasks.runtime.implementations import load_implementations
from tasks.runtime.mcp_exposure import (
    END_META_KEY,
    SESSION_META_KEY,
    STATE_DIFF_URI,
    STATE_HASH_URI,
    STATE_META_KEY,
    EnvironmentServer,
    build_mcp_server,
    call_tool_result,
)
from tests.runtime import (
    ANA,
    ANA_BOOKED,
    BOOK,
    FIXTURE_DIR,
    HARBOR,
    SERVER,
)

HTTP_BASE = "http://127.0.0.1:8000"


def _with_client(server: EnvironmentServer, scenario):
    async def main():
        async with Client(server, raise_exceptions=True) as client:
            return await scenario(client)

    return anyio.run(main)


def test_listed_schemas_equal_the_spec_and_hints_follow_the_effect(environment):
    """What agents read from the live server is exactly the spec's schema."""

    async def scenario(client):
        return (await client.list_tools()).tools

    listed = _with_client(build_mcp_server(environment), scenario)
    assert [tool.name for tool in listed] == [t.name for t in environment.spec.tools]
    for tool, spec in zip(listed, environment.spec.tools, strict=True):
        assert tool.input_schema == spec.parameters
        assert tool.description == spec.description
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is (spec.effect == "read")
        assert tool.annotations.open_world_hint is False
    book = next(tool for tool in listed if tool.name == "book_appointment")
    assert book.input_schema["properties"]["confirm"]["type"] == "boolean"
    assert "confirm" not in book.input_schema["required"]


def test_every_tool_works_over_mcp(environment):
    """Each tool answers with JSON text and structured content; state follows."""

    async def scenario(client):
        calls = [
            ("authorize_patient", {"patient_id": ANA}),
            ("list_clinics", {"city": "Porto"}),
            ("list_my_appointments", {"status": "booked"}),
            ("book_appointment", BOOK),
            ("book_appointment", {**BOOK, "confirm": True}),
            ("cancel_appointment", {"appointment_id": ANA_BOOKED}),
        ]
        return [await client.call_tool(name, args) for name, args in calls]

    server = build_mcp_server(environment)
    results = _with_client(server, scenario)
    assert not any(result.is_error for result in results)
    for result in results:
        assert json.loads(result.content[0].text) == result.structured_content
    auth, clinics, mine, preview, booked, cancelled = (
        r.structured_content for r in results
    )
    assert auth == {"authorized": True, "patient_id": ANA}
    assert [c["clinic_id"] for c in clinics["clinics"]] == [HARBOR]
    assert [a["appointment_id"] for a in mine["appointments"]] == [ANA_BOOKED]
    assert preview["needs_confirmation"] is True
    assert cancelled["appointment"]["status"] == "cancelled"
    new_id = booked["appointment"]["appointment_id"]
    assert environment.diff(server.local_session) == DatabaseDiff(
        tables={
            "Appointment": TableDiff(
                inserted=(new_id,),
                updated={ANA_BOOKED: {"status": ("booked", "cancelled")}},
            )
        }
    )


def test_a_bad_id_gives_an_error_result_with_the_message(environment):
    """Tool errors are MCP error results, not protocol errors or silent dicts."""

    async def scenario(client):
        await client.call_tool("authorize_patient", {"patient_id": ANA})
        return await client.call_tool("cancel_appointment", {"appointment_id": "x"})

    result = _with_client(build_mcp_server(environment), scenario)
    assert result.is_error is True
    assert result.content[0].text == "no Appointment with appointment_id 'x'"
    assert result.structured_content is None


def test_unknown_tools_unknown_arguments_and_crashes_are_error_results(environment):
    """Nothing is dropped or coerced by the SDK before the runtime checks it."""

    def list_clinics(env, city=None):
        return {"count": 1 / 0}

    path = FIXTURE_DIR / "mcp_servers" / f"{SERVER}.py"
    bodies = load_implementations(path, [t.name for t in environment.spec.tools])
    environment = Environment(
        environment.spec, environment.base, {**bodies, "list_clinics": list_clinics}
    )

    async def scenario(client):
        await client.call_tool("authorize_patient", {"patient_id": ANA})
        return [
            await client.call_tool("refund", {}),
            await client.call_tool("book_appointment", {**BOOK, "notes": "x"}),
            await client.call_tool("book_appointment", {**BOOK, "confirm": "true"}),
            await client.call_tool("list_clinics", {}),
        ]

    server = build_mcp_server(environment)
    unknown, extra, coerced, crashed = _with_client(server, scenario)
    assert all(r.is_error for r in (unknown, extra, coerced, crashed))
    assert "Unknown tool" in unknown.content[0].text
    assert "unknown argument(s) 'notes'" in extra.content[0].text
    assert "'confirm' must be of type boolean, not string" in coerced.content[0].text
    assert crashed.content[0].text == (
        "internal error in tool list_clinics: ZeroDivisionError: division by zero"
    )
    assert environment.diff(server.local_session).empty


def test_request_meta_selects_the_runtime_session(environment):
    """`_meta["agentskiller/session"]` keeps clients on one connection apart."""

    async def scenario(client):
        def meta(session):
            return {SESSION_META_KEY: session}

        await client.call_tool(
            "authorize_patient", {"patient_id": ANA}, meta=meta("alice")
        )
        await client.call_tool(
            "book_appointment", {**BOOK, "confirm": True}, meta=meta("alice")
        )
        return await client.call_tool("list_clinics", {}, meta=meta("bob"))

    other = _with_client(build_mcp_server(environment), scenario)
    assert other.is_error
    assert set(environment.session_ids) == {"alice", "bob"}
    assert not environment.diff("alice").empty
    assert environment.diff("bob").empty


async def _http_calls(app, calls, *, mode="auto"):
    """What one official client gets for `calls` over streamable HTTP to `app`."""
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url=HTTP_BASE) as http:
        connection = streamable_http_client(f"{HTTP_BASE}/mcp", http_client=http)
        async with Client(connection, mode=mode) as client:
            return [await client.call_tool(name, args) for name, args in calls]


def test_each_http_mcp_session_gets_its_own_runtime_session(environment):
    """Over streamable HTTP, two MCP sessions are two isolated runtime sessions."""
    server = build_mcp_server(environment)
    app = server.streamable_http_app()
    book = [
        ("authorize_patient", {"patient_id": ANA}),
        ("book_appointment", {**BOOK, "confirm": True}),
    ]

    async def main():
        async with server.session_manager.run():
            first = await _http_calls(app, book, mode="legacy")
            second = await _http_calls(app, [("list_clinics", {})], mode="legacy")
            return first, second

    first, second = anyio.run(main)
    assert [r.is_error for r in first] == [False, False]
    assert second[0].content[0].text == "not authorized: call authorize_patient first"
    sessions = environment.session_ids
    assert len(sessions) == 2 and server.local_session not in sessions
    changed = [not environment.diff(session).empty for session in sessions]
    assert changed == [True, False]


def test_an_http_request_without_session_identity_runs_in_a_private_session(
    environment,
):
    """A client's first request has no cookie yet: that call's state is dropped.

    A client pinned to 2026-07-28 skips discovery, so its first request is the
    tool call; the response sets the cookie that its second request carries.
    """
    server = build_mcp_server(environment)
    app = server.streamable_http_app()
    calls = [
        ("authorize_patient", {"patient_id": ANA}),
        ("list_my_appointments", {}),
    ]

    async def main():
        async with server.session_manager.run():
            return await _http_calls(app, calls, mode="2026-07-28")

    authorized, mine = anyio.run(main)
    assert authorized.structured_content == {"authorized": True, "patient_id": ANA}
    assert mine.content[0].text == "not authorized: call authorize_patient first"
    (cookie_session,) = environment.session_ids
    assert environment.session(cookie_session).authorized_id is None


def test_in_memory_clients_of_two_servers_have_separate_sessions(environment):
    """stdio and in-memory connections share one session per server object."""
    first, second = build_mcp_server(environment), build_mcp_server(environment)

    async def authorize_and_book(client):
        await client.call_tool("authorize_patient", {"patient_id": ANA})
        return await client.call_tool("book_appointment", {**BOOK, "confirm": True})

    async def list_mine(client):
        return await client.call_tool("list_my_appointments", {})

    booked = _with_client(first, authorize_and_book)
    other = _with_client(second, list_mine)
    again = _with_client(first, list_mine)
    assert not booked.is_error
    assert other.content[0].text == "not authorized: call authorize_patient first"
    new_id = booked.structured_content["appointment"]["appointment_id"]
    listed = [a["appointment_id"] for a in again.structured_content["appointments"]]
    assert new_id in listed
    assert set(environment.session_ids) == {first.local_session, second.local_session}


def test_non_object_results_are_wrapped_for_structured_content():
    """Lists and scalars keep their JSON text; structured content is an object."""
    result = call_tool_result(ToolResult(tool="t", content=[1, 2]))
    assert result.content[0].text == "[1, 2]"
    assert result.structured_content == {"result": [1, 2]}
    error = call_tool_result(ToolResult(tool="t", is_error=True, error="nope"))
    assert error.is_error and error.content[0].text == "nope"


async def _state(client, meta=None):
    """The (hash, diff) a client reads from the session-state resources."""
    hashed = await client.read_resource(STATE_HASH_URI, meta=meta)
    diffed = await client.read_resource(STATE_DIFF_URI, meta=meta)
    return hashed.contents[0].text, json.loads(diffed.contents[0].text)


def test_session_state_resources_of_a_single_server(environment):
    """`state://session/hash` and `/diff` are listed and read in the caller's
    session: they follow its writes, and another session keeps the base."""
    base = environment.base.state_hash()

    async def scenario(client):
        listed = (await client.list_resources()).resources
        before = await _state(client)
        await client.call_tool("authorize_patient", {"patient_id": ANA})
        booked = await client.call_tool("book_appointment", {**BOOK, "confirm": True})
        after = await _state(client)
        other = await _state(client, meta={SESSION_META_KEY: "someone-else"})
        return listed, before, booked, after, other

    server = build_mcp_server(environment)
    listed, before, booked, after, other = _with_client(server, scenario)
    new_id = booked.structured_content["appointment"]["appointment_id"]
    assert {(str(r.uri), r.mime_type) for r in listed} == {
        (STATE_HASH_URI, "text/plain"),
        (STATE_DIFF_URI, "application/json"),
    }
    assert before == (base, {"tables": {}})
    assert after == (
        environment.state_hash(server.local_session),
        {
            "tables": {
                "Appointment": {"inserted": [new_id], "updated": {}, "deleted": []}
            }
        },
    )
    assert after[0] != base
    assert other == (base, {"tables": {}})


def test_a_call_asking_for_its_state_gets_what_the_resources_give(environment):
    """A write whose request `_meta` asks for the state hash and diff gets them
    in its result's `_meta`, equal to the resources read right after; a call
    that asks for nothing (or only for unknown fields) gets no state."""

    async def scenario(client):
        await client.call_tool("authorize_patient", {"patient_id": ANA})
        booked = await client.call_tool(
            "book_appointment",
            {**BOOK, "confirm": True},
            meta={STATE_META_KEY: ["diff", "state_hash", "rows"]},
        )
        after = await _state(client)
        plain = await client.call_tool("list_clinics", {})
        unknown = await client.call_tool(
            "list_clinics", {}, meta={STATE_META_KEY: ["rows"]}
        )
        return booked, after, plain, unknown

    booked, after, plain, unknown = _with_client(
        build_mcp_server(environment), scenario
    )
    reported = booked.meta[STATE_META_KEY]
    assert (reported["state_hash"], reported["diff"]) == after
    assert reported["diff"]["tables"]["Appointment"]["inserted"]
    assert STATE_META_KEY not in (plain.meta or {})
    assert STATE_META_KEY not in (unknown.meta or {})


def test_a_call_that_ends_its_session_reports_its_state_then_forgets_it(
    environment,
):
    """A call whose `_meta` sets `agentskiller/end` gets the state it asked for
    as it was after the call; the session is then forgotten, so reading it again
    gives the base state, and another session is untouched."""
    base = environment.base.state_hash()

    async def scenario(client):
        mine = {SESSION_META_KEY: "mine"}
        other = {SESSION_META_KEY: "other"}
        for meta in (mine, other):
            await client.call_tool("authorize_patient", {"patient_id": ANA}, meta=meta)
        kept = await client.call_tool(
            "book_appointment", {**BOOK, "confirm": True}, meta=other
        )
        booked = await client.call_tool(
            "book_appointment",
            {**BOOK, "confirm": True},
            meta={**mine, STATE_META_KEY: ["state_hash", "diff"], END_META_KEY: True},
        )
        return kept, booked, await _state(client, mine), await _state(client, other)

    kept, booked, mine_after, other_after = _with_client(
        build_mcp_server(environment), scenario
    )
    assert not kept.is_error and not booked.is_error
    reported = booked.meta[STATE_META_KEY]
    assert reported["state_hash"] != base
    assert reported["diff"]["tables"]["Appointment"]["inserted"]
    assert mine_after == (base, {"tables": {}})
    assert other_after[0] != base

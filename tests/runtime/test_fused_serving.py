"""Tests of serving fused environments built from the demo world's real servers:
DentalAppointments and TreatmentBilling (core entity Patient, both with a Clinic
table) served as one MCP server by `agentskiller serve-env` over streamable HTTP,
and the errors for fused names that cannot be served."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tasks.runtime.mcp_exposure import STATE_DIFF_URI, STATE_HASH_URI
from tasks.runtime.serve import load_environment, main
from tests.runtime import FUSED

pytestmark = pytest.mark.slow

OPENAI_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
INVOICES = "database/outputs/relationships/TreatmentBilling/Invoice.json"


def _unpaid_invoice(output: Path) -> dict:
    return next(i for i in json.loads((output / INVOICES).read_text()) if not i["paid"])


async def _state(client):
    hashed = await client.read_resource(STATE_HASH_URI)
    diffed = await client.read_resource(STATE_DIFF_URI)
    return hashed.contents[0].text, json.loads(diffed.contents[0].text)


def test_a_fused_environment_is_one_mcp_server_with_session_state(
    demo_output, fused_http_url
):
    """Tool names are OpenAI-valid and unique; authorizing through
    DentalAppointments lets TreatmentBilling's pay_invoice act for the same
    patient; the write changes `TreatmentBilling.Invoice`, which the hash and
    diff resources show; a second client still reads the base state."""
    invoice = _unpaid_invoice(demo_output)
    base = load_environment(demo_output, FUSED).base.state_hash()

    async def scenario():
        with anyio.fail_after(60):
            async with Client(fused_http_url) as a:
                tools = (await a.list_tools()).tools
                before = await _state(a)
                auth = await a.call_tool(
                    "DentalAppointments__authorize_patient",
                    {"patient_id": invoice["patient_id"]},
                )
                paid = await a.call_tool(
                    "TreatmentBilling__pay_invoice",
                    {"invoice_id": invoice["invoice_id"], "confirm": True},
                )
                after = await _state(a)
                async with Client(fused_http_url) as b:
                    other = await _state(b)
        return tools, before, auth, paid, after, other

    tools, before, auth, paid, after, other = anyio.run(scenario)
    names = [tool.name for tool in tools]
    assert len(names) == len(set(names)) == 10
    assert all(OPENAI_TOOL_NAME.match(name) for name in names)
    assert {name.split("__")[0] for name in names} == set(FUSED.split("_"))
    assert not auth.is_error and not paid.is_error
    assert before == (base, {"tables": {}})
    assert after[0] != base
    assert after[1] == {
        "tables": {
            "TreatmentBilling.Invoice": {
                "inserted": [],
                "updated": {invoice["invoice_id"]: {"paid": [False, True]}},
                "deleted": [],
            }
        }
    }
    assert other == (base, {"tables": {}})


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "DentalAppointments_Nope",
            "fused environment DentalAppointments_Nope: Nope is not a server of "
            "{out} (servers: AccountServicing, CardServices, DentalAppointments, "
            "FlightBooking, TreatmentBilling)",
        ),
        (
            "DentalAppointments_FlightBooking",
            "fused environment DentalAppointments_FlightBooking: FlightBooking is "
            "not a built server (mcp_servers/FlightBooking.py does not exist)",
        ),
        (
            "TreatmentBilling_DentalAppointments",
            "TreatmentBilling_DentalAppointments is not a fused name: its members "
            "must be distinct and in name order (DentalAppointments_TreatmentBilling)",
        ),
        (
            "AccountServicing_DentalAppointments",
            "AccountServicing_DentalAppointments: the members do not share their "
            "core entity (AccountServicing: AccountHolder, DentalAppointments: "
            "Patient)",
        ),
    ],
)
def test_a_fused_name_that_cannot_be_served_says_what_is_missing(
    demo_output, capsys, name, message
):
    """`serve-env` exits with 2 and one line naming the missing member."""
    assert main([name, "--output-dir", str(demo_output)]) == 2
    expected = message.format(out=demo_output)
    assert capsys.readouterr().err == f"cannot load environment {name}: {expected}\n"

"""Hand-built rollouts for the training-export tests: one single-server
environment (`DentalClinic`, tools `get_x`) and one fused environment
(`Billing_DentalClinic`, tools `Server__tool`), with the OpenAI tool schemas their
assistants saw and the policies they used."""

from __future__ import annotations

import json
from typing import Any

from schemas.fusion import agent_tool_names
from schemas.rollout import ChatMessage, FunctionCall, Rollout, ToolCall, ToolRoute

SINGLE_ENV = "DentalClinic"
FUSED_ENV = "Billing_DentalClinic"
SINGLE_POLICY = "You are the DentalClinic assistant. Verify the patient first."
FUSED_POLICY = "You serve DentalClinic and Billing. Never pay more than is owed."


def function_tool(name: str, description: str, **properties: Any) -> dict[str, Any]:
    """An OpenAI function tool whose every property is required."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(properties),
                "additionalProperties": False,
            },
        },
    }


SINGLE_TOOLS = [
    function_tool(
        "get_patient",
        "Look a patient up.",
        patient_id={"type": "string", "description": "The patient."},
    ),
    function_tool(
        "book_appointment",
        "Book a visit.",
        patient_id={"type": "string", "description": "The patient."},
        slot={"type": "string", "description": "ISO start time."},
        minutes={"type": "integer", "description": "Length.", "minimum": 15},
    ),
]

_FUSED_NAMES = agent_tool_names(
    [
        ("Billing", "get_invoice"),
        ("Billing", "pay_invoice"),
        ("DentalClinic", "get_patient"),
    ]
)
FUSED_TOOLS = [
    function_tool(
        "Billing__get_invoice",
        "Read an invoice.",
        invoice_id={"type": "string", "description": "The invoice."},
    ),
    function_tool(
        "Billing__pay_invoice",
        "Pay an invoice.",
        invoice_id={"type": "string", "description": "The invoice."},
        amount={"type": "number", "description": "In euros."},
        method={"type": "string", "enum": ["card", "cash"], "description": "How."},
    ),
    function_tool(
        "DentalClinic__get_patient",
        "Look a patient up.",
        patient_id={"type": "string", "description": "The patient."},
    ),
]


def user(text: str) -> ChatMessage:
    return ChatMessage(role="user", content=text)


def assistant(
    text: str | None = None, *calls: ToolCall, reasoning: str | None = None
) -> ChatMessage:
    return ChatMessage(
        role="assistant",
        content=text,
        tool_calls=calls or None,
        reasoning_content=reasoning,
    )


def call(id_: str, name: str, **arguments: Any) -> ToolCall:
    return ToolCall(
        id=id_, function=FunctionCall(name=name, arguments=json.dumps(arguments))
    )


def result(id_: str, payload: Any) -> ChatMessage:
    return ChatMessage(
        role="tool", tool_call_id=id_, content=json.dumps(payload, ensure_ascii=False)
    )


def single_rollout(
    *messages: ChatMessage, trial: int = 0, query_id: str = "q-single"
) -> Rollout:
    """A DentalClinic rollout; by default user -> call -> result -> answer -> STOP."""
    default = (
        user("I need a cleaning, I'm patient P-7."),
        assistant(None, call("call_1", "get_patient", patient_id="P-7")),
        result("call_1", {"patient_id": "P-7", "name": "Zoë Ünal"}),
        assistant("You are verified, Zoë. Which slot suits you?"),
        user("Thanks, that's all."),
    )
    return Rollout(
        id=query_id,
        trial=trial,
        environment=SINGLE_ENV,
        messages=messages or default,
        success=True,
        stopped=True,
        stop_reason="user_token",
        total_turns=2,
        tool_names={
            name: ToolRoute(server=SINGLE_ENV, tool=name)
            for name in ("get_patient", "book_appointment")
        },
    )


def fused_rollout(trial: int = 0, query_id: str = "q-fused") -> Rollout:
    """A fused rollout with two parallel calls (and text beside them), a payment
    with reasoning, an answer and a closing user message."""
    messages = (
        user("Please settle invoice I-3 for patient P-7."),
        assistant(
            "Let me look both up.",
            call("c1", "Billing__get_invoice", invoice_id="I-3"),
            call("c2", "DentalClinic__get_patient", patient_id="P-7"),
        ),
        result("c1", {"invoice_id": "I-3", "due": 80.5}),
        result("c2", {"patient_id": "P-7"}),
        assistant(
            None,
            call(
                "c3",
                "Billing__pay_invoice",
                invoice_id="I-3",
                amount=80.5,
                method="card",
            ),
            reasoning="80.5 is owed; pay exactly that.",
        ),
        result("c3", {"paid": True}),
        assistant("Paid 80.50 EUR by card."),
        user("Great, bye."),
    )
    return Rollout(
        id=query_id,
        trial=trial,
        environment=FUSED_ENV,
        messages=messages,
        success=True,
        stopped=True,
        stop_reason="user_token",
        total_turns=2,
        has_reasoning=True,
        tool_names={
            name: ToolRoute(server=server, tool=tool)
            for name, (server, tool) in _FUSED_NAMES.items()
        },
    )


SYSTEM_PROMPTS = {SINGLE_ENV: SINGLE_POLICY, FUSED_ENV: FUSED_POLICY}
TOOLS = {SINGLE_ENV: SINGLE_TOOLS, FUSED_ENV: FUSED_TOOLS}

"""OpenAI-shaped chat data becomes typed rollout messages: tool calls from dicts
or SDK objects, format errors, tool-result contents, control tokens."""

from __future__ import annotations

import json

from mcp_types import CallToolResult, TextContent, Tool
from openai.types.chat import ChatCompletionMessage

from schemas.rollout import ChatMessage, FunctionCall, ToolCall
from tasks.core.evaluation import is_error_result
from tasks.runtime.chat import (
    as_chat_message,
    as_tool_call,
    control_tokens,
    count_format_errors,
    openai_tool,
    parse_arguments,
    result_content,
)


def test_a_tool_call_is_read_from_a_dict_with_text_or_object_arguments():
    """Arguments given as an object are written as JSON text; a missing id is
    made up from the call's position."""
    text = {
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
    }
    assert as_tool_call(text) == ToolCall(
        id="c1", function=FunctionCall(name="f", arguments="{}")
    )
    made = as_tool_call({"function": {"name": "g", "arguments": {"a": 1}}}, 3)
    assert made == ToolCall(
        id="call_3", function=FunctionCall(name="g", arguments='{"a": 1}')
    )


def test_an_openai_sdk_message_keeps_only_the_rollout_record_keys():
    """The SDK's extra fields (refusal, audio, ...) are dropped; its tool calls
    become typed ones."""
    sdk = ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": "c9",
                    "type": "function",
                    "function": {"name": "f", "arguments": '{"x": 2}'},
                }
            ],
        }
    )
    message = as_chat_message(sdk)
    assert message == ChatMessage(
        role="assistant",
        tool_calls=(
            ToolCall(id="c9", function=FunctionCall(name="f", arguments='{"x": 2}')),
        ),
    )
    parts = {
        "role": "user",
        "content": [{"type": "text", "text": "hi "}, {"type": "text", "text": "there"}],
    }
    assert as_chat_message(parts).content == "hi there"


def test_arguments_that_are_not_a_json_object_are_format_errors():
    """Only a JSON object (or empty text, meaning no arguments) is accepted."""
    assert parse_arguments('{"a": 1}') == {"a": 1}
    assert parse_arguments("  ") == {}
    assert [parse_arguments(t) for t in ("[1]", '"x"', "{bad", "3")] == [None] * 4
    calls = tuple(
        ToolCall(id=str(i), function=FunctionCall(name="f", arguments=a))
        for i, a in enumerate(("{}", "[1]", "{oops"))
    )
    messages = [ChatMessage(role="assistant", tool_calls=calls)]
    assert count_format_errors(messages) == 2


def test_a_tool_error_becomes_an_error_object_and_a_result_stays_its_json_text():
    """The evaluators' tool-error rule recognises the one and not the other."""
    failed = CallToolResult(
        content=[TextContent(type="text", text="no card")], is_error=True
    )
    ok = CallToolResult(content=[TextContent(type="text", text='{"blocked": true}')])
    assert json.loads(result_content(failed)) == {"error": "no card"}
    assert is_error_result(result_content(failed))
    assert result_content(ok) == '{"blocked": true}'
    assert not is_error_result(result_content(ok))


def test_control_tokens_are_found_and_removed_from_a_user_reply():
    """Any of the three tokens anywhere in the reply; the rest is stripped."""
    assert control_tokens("Thanks! ###STOP###") == (
        frozenset({"###STOP###"}),
        "Thanks!",
    )
    assert control_tokens("###TRANSFER### ###OUT-OF-SCOPE###")[1] == ""
    assert control_tokens("go on") == (frozenset(), "go on")


def test_an_mcp_tool_becomes_an_openai_function_tool():
    """Name, description and the input schema as parameters."""
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    tool = Tool(name="f", description="does f", input_schema=schema)
    assert openai_tool(tool) == {
        "type": "function",
        "function": {"name": "f", "description": "does f", "parameters": schema},
    }

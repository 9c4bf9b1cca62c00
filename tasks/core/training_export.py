"""Training-data export: takes rollouts, their evaluation results, and per
environment the system prompt (policy) and the OpenAI tool schemas the assistant
saw; returns which rollouts to keep and one JSONL text per trainer format. Pure
(the step writes the files).

Formats (one record per rollout, the same conversation in each; see
`tasks.core.training_conversation` for how it is normalised):
- `openai`: OpenAI chat fine-tuning: `messages` (system, user, assistant with
  `tool_calls` whose `function.arguments` is the JSON text the model wrote, tool
  messages with `tool_call_id`) and `tools` (OpenAI function tools).
  `reasoning_content` is dropped: OpenAI's format has no such field.
- `trl`: TRL's conversational format with a `tools` column: arguments are JSON
  objects, tool messages carry `name` and `tool_call_id`, assistant messages keep
  `reasoning_content` (the key reasoning models' chat templates read).
- `sharegpt`: LLaMA-Factory's ShareGPT: `conversations` of human / gpt /
  function_call / observation turns, `system`, and `tools` as a JSON string of the
  bare function schemas. Several calls of one turn are one `function_call` turn
  holding a JSON list of `{name, arguments}` (LLaMA-Factory reads a list as
  parallel calls); their results are one `observation` turn joined the way
  LLaMA-Factory joins tool responses itself. Reasoning goes first in a
  `<think>...</think>` block, which its reasoning templates split off. Text an
  assistant wrote beside its calls is dropped: a function_call turn holds JSON only.

Every record also has `id` (the query id), `environment`, `trial` and
`data_source` ("agent"). Its tools are exactly the schemas the assistant saw, so
every called name has its schema in the record under the same agent-facing name
(`get_x`, or `Server__tool` in a fused environment).

Each file loads with `datasets.load_dataset("json", data_files=..., split="train")`.
Tool parameters and call arguments differ in shape from record to record: datasets
4.8 and later keep such fields as `Json` and return them unchanged, while older
versions pad every object with the other records' keys set to null, which
silently changes schemas and arguments. ShareGPT is safe either way, since its
tools and calls are JSON strings. The openai and trl files keep objects because
OpenAI requires object `parameters` and TRL's chat templates read object
arguments, so load them with datasets >= 4.8.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.evaluation import EvaluationResult
from schemas.rollout import Rollout
from tasks.core.training_conversation import (
    TrainingExportError,
    Turn,
    conversation_turns,
)

ExportFormat = Literal["openai", "trl", "sharegpt"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("openai", "trl", "sharegpt")
DATA_SOURCE = "agent"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
OBSERVATION_JOINER = "\n</tool_response>\n<tool_response>\n"
"""How LLaMA-Factory joins several tool responses into one observation turn when it
converts OpenAI-style messages itself; kept so both routes give the same text."""

Record = dict[str, Any]
Tool = Mapping[str, Any]


@dataclass(frozen=True)
class Selection:
    """The rollouts kept for export, and why the others were left out."""

    rollouts: tuple[Rollout, ...]
    skipped: dict[str, int] = field(default_factory=dict)


def select(
    rollouts: Iterable[Rollout],
    results: Iterable[EvaluationResult],
    *,
    only_passed: bool = True,
    evaluator: str | None = None,
) -> Selection:
    """Keep rollouts by their evaluation outcome, joined on (query id, trial).

    Args:
        rollouts: The rollouts.
        results: Their evaluation results.
        only_passed: Keep only passing rollouts; False keeps every evaluated one.
        evaluator: Judge by this evaluator's verdict instead of the overall one.

    Returns:
        The kept rollouts, ordered by (environment, id, trial), and the count of
        the others by reason: `no_result` (never evaluated), `no_verdict` (the
        evaluator did not judge it), `failed`.

    Raises:
        ValueError: If two results share a (query id, trial).
    """
    by_key: dict[tuple[str, int], EvaluationResult] = {}
    for result in results:
        key = (result.id, result.trial)
        if key in by_key:
            raise ValueError(
                f"two evaluation results for query {key[0]} trial {key[1]}"
            )
        by_key[key] = result
    kept: list[Rollout] = []
    skipped: Counter[str] = Counter()
    for rollout in rollouts:
        result = by_key.get((rollout.id, rollout.trial))
        if result is None:
            skipped["no_result"] += 1
            continue
        if evaluator is None:
            passed = result.passed
        elif evaluator in result.evaluators:
            passed = result.evaluators[evaluator].passed
        else:
            skipped["no_verdict"] += 1
            continue
        if only_passed and not passed:
            skipped["failed"] += 1
            continue
        kept.append(rollout)
    kept.sort(key=lambda r: (r.environment, r.id, r.trial))
    return Selection(rollouts=tuple(kept), skipped=dict(sorted(skipped.items())))


def openai_record(
    rollout: Rollout, system_prompt: str, tools: Sequence[Tool]
) -> Record:
    """The rollout as one OpenAI chat fine-tuning line.

    Raises:
        TrainingExportError: See `conversation_turns`; also for bad tool schemas.
    """
    schemas = _checked_tools(rollout, tools)
    turns = conversation_turns(rollout, _names(schemas))
    messages = _chat_messages(system_prompt, turns, trl=False)
    return {"messages": messages, "tools": schemas} | _meta(rollout)


def trl_record(rollout: Rollout, system_prompt: str, tools: Sequence[Tool]) -> Record:
    """The rollout as one row of TRL's conversational format with `tools`.

    Raises:
        TrainingExportError: See `conversation_turns`; also for bad tool schemas.
    """
    schemas = _checked_tools(rollout, tools)
    turns = conversation_turns(rollout, _names(schemas))
    messages = _chat_messages(system_prompt, turns, trl=True)
    return {"messages": messages, "tools": schemas} | _meta(rollout)


def _chat_messages(system_prompt: str, turns: list[Turn], *, trl: bool) -> list[Record]:
    """OpenAI-style messages; for TRL, arguments as objects, the tool's name on
    its results and the reasoning kept. An assistant message that only calls tools
    has no `content` key, as both formats' own examples show it."""
    messages: list[Record] = [{"role": "system", "content": system_prompt}]
    for turn in turns:
        message: Record = {"role": turn.role}
        if turn.content is not None:
            message["content"] = turn.content
        if trl and turn.reasoning is not None:
            message["reasoning_content"] = turn.reasoning
        if turn.calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {
                        "name": c.name,
                        "arguments": c.arguments if trl else c.arguments_text,
                    },
                }
                for c in turn.calls
            ]
        messages.append(message)
        for c in turn.calls:
            named = {"name": c.name} if trl else {}
            messages.append(
                {"role": "tool"} | named | {"tool_call_id": c.id, "content": c.result}
            )
    return messages


def sharegpt_record(
    rollout: Rollout, system_prompt: str, tools: Sequence[Tool]
) -> Record:
    """The rollout as one LLaMA-Factory ShareGPT example.

    Raises:
        TrainingExportError: See `conversation_turns`; also for bad tool schemas.
    """
    schemas = _checked_tools(rollout, tools)
    conversations: list[Record] = []
    for turn in conversation_turns(rollout, _names(schemas)):
        if turn.role == "user":
            conversations.append({"from": "human", "value": turn.content})
            continue
        if not turn.calls:
            value = _thought(turn.reasoning) + (turn.content or "")
            conversations.append({"from": "gpt", "value": value})
            continue
        calls = [{"name": c.name, "arguments": c.arguments} for c in turn.calls]
        payload = _json(calls[0] if len(calls) == 1 else calls)
        conversations += [
            {"from": "function_call", "value": _thought(turn.reasoning) + payload},
            {
                "from": "observation",
                "value": OBSERVATION_JOINER.join(c.result or "" for c in turn.calls),
            },
        ]
    functions = [dict(schema["function"]) for schema in schemas]
    return {
        "conversations": conversations,
        "system": system_prompt,
        "tools": _json(functions),
    } | _meta(rollout)


RecordBuilder = Callable[[Rollout, str, Sequence[Tool]], Record]
RECORD_BUILDERS: dict[ExportFormat, RecordBuilder] = {
    "openai": openai_record,
    "trl": trl_record,
    "sharegpt": sharegpt_record,
}


@dataclass(frozen=True)
class TrainingExports:
    """One JSONL text per format (the same records, in the same order)."""

    files: dict[ExportFormat, str]
    records: int
    skipped: dict[str, int] = field(default_factory=dict)


def training_exports(
    rollouts: Iterable[Rollout],
    *,
    system_prompts: Mapping[str, str],
    tools: Mapping[str, Sequence[Tool]],
) -> TrainingExports:
    """Every rollout in every format, ordered by (environment, id, trial).

    Args:
        rollouts: The rollouts to export (see `select`).
        system_prompts: Environment -> the system prompt its assistant used.
        tools: Environment -> the OpenAI tool schemas its assistant saw.

    Returns:
        The JSONL texts (one object a line, UTF-8 kept, keys sorted: the same
        input gives the same bytes), how many records each holds, and the count
        of rollouts left out by reason (`unknown_environment`, or a
        `TrainingExportError` reason); a rollout left out is left out of every
        format.

    Raises:
        ValueError: If two rollouts share a (query id, trial).
    """
    ordered = sorted(rollouts, key=lambda r: (r.environment, r.id, r.trial))
    keys = Counter((r.id, r.trial) for r in ordered)
    if repeated := [key for key, count in keys.items() if count > 1]:
        raise ValueError(f"rollouts listed twice (query id, trial): {repeated}")
    lines: dict[ExportFormat, list[str]] = {fmt: [] for fmt in EXPORT_FORMATS}
    skipped: Counter[str] = Counter()
    for rollout in ordered:
        env = rollout.environment
        if env not in system_prompts or env not in tools:
            skipped["unknown_environment"] += 1
            continue
        try:
            records = {
                fmt: build(rollout, system_prompts[env], tools[env])
                for fmt, build in RECORD_BUILDERS.items()
            }
        except TrainingExportError as error:
            skipped[error.reason] += 1
            continue
        for fmt, record in records.items():
            lines[fmt].append(_json(record, sort_keys=True) + "\n")
    return TrainingExports(
        files={fmt: "".join(texts) for fmt, texts in lines.items()},
        records=len(lines["openai"]),
        skipped=dict(sorted(skipped.items())),
    )


def _checked_tools(rollout: Rollout, tools: Sequence[Tool]) -> list[Record]:
    """Plain JSON copies of the tool schemas, refused unless each is an OpenAI
    function tool with a name and object parameters, the names are unique, and
    (when the rollout records its tool mapping) every name is one the rollout's
    environment gave its assistant: schemas and calls share one namespace."""
    schemas: list[Record] = json.loads(json.dumps(list(tools)))
    names: set[str] = set()
    for schema in schemas:
        function = schema.get("function") if isinstance(schema, dict) else None
        if (
            not isinstance(function, dict)
            or schema.get("type") != "function"
            or not isinstance(function.get("name"), str)
            or not isinstance(function.get("parameters"), dict)
        ):
            raise TrainingExportError(
                "bad_tool_schema", f"not a function tool: {schema}"
            )
        name = function["name"]
        if name in names:
            raise TrainingExportError("bad_tool_schema", f"{name} is listed twice")
        if rollout.tool_names and name not in rollout.tool_names:
            raise TrainingExportError(
                "tool_namespace", f"{name} is not an agent tool name of the rollout"
            )
        names.add(name)
    return schemas


def _names(schemas: list[Record]) -> set[str]:
    return {schema["function"]["name"] for schema in schemas}


def _thought(reasoning: str | None) -> str:
    return "" if reasoning is None else f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n"


def _meta(rollout: Rollout) -> Record:
    return {
        "id": rollout.id,
        "environment": rollout.environment,
        "trial": rollout.trial,
        "data_source": DATA_SOURCE,
    }


def _json(value: Any, *, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=sort_keys)

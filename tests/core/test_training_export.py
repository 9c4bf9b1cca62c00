"""Training-data export: the three trainer formats, the outcome filter, and the
written files, which `datasets` must load back unchanged."""

from __future__ import annotations

import json
import random

import pytest

from schemas.evaluation import EvaluationResult, Verdict
from tasks.core.training_conversation import TrainingExportError
from tasks.core.training_export import (
    EXPORT_FORMATS,
    OBSERVATION_JOINER,
    RECORD_BUILDERS,
    openai_record,
    select,
    sharegpt_record,
    training_exports,
    trl_record,
)
from tasks.store import ArtifactStore, OutputLayout
from tasks.training_export import write_training_exports
from tests.training_rollouts import (
    FUSED_POLICY,
    FUSED_TOOLS,
    SINGLE_POLICY,
    SINGLE_TOOLS,
    SYSTEM_PROMPTS,
    TOOLS,
    assistant,
    call,
    fused_rollout,
    result,
    single_rollout,
    user,
)

META_SINGLE = {
    "id": "q-single",
    "environment": "DentalClinic",
    "trial": 0,
    "data_source": "agent",
}
RESULT_TEXT = '{"patient_id": "P-7", "name": "Zoë Ünal"}'
ANSWER = "You are verified, Zoë. Which slot suits you?"
CASES = [
    pytest.param(single_rollout(), SINGLE_POLICY, SINGLE_TOOLS, id="single"),
    pytest.param(fused_rollout(), FUSED_POLICY, FUSED_TOOLS, id="fused"),
]


def test_openai_record_of_a_single_server_rollout():
    """Arguments stay the JSON text the model wrote; the closing user turn goes."""
    record = openai_record(single_rollout(), SINGLE_POLICY, SINGLE_TOOLS)
    expected = META_SINGLE | {
        "messages": [
            {"role": "system", "content": SINGLE_POLICY},
            {"role": "user", "content": "I need a cleaning, I'm patient P-7."},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "get_patient",
                            "arguments": '{"patient_id": "P-7"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": RESULT_TEXT},
            {"role": "assistant", "content": ANSWER},
        ],
        "tools": SINGLE_TOOLS,
    }
    assert record == expected


def test_trl_record_of_a_single_server_rollout():
    record = trl_record(single_rollout(), SINGLE_POLICY, SINGLE_TOOLS)
    expected = META_SINGLE | {
        "messages": [
            {"role": "system", "content": SINGLE_POLICY},
            {"role": "user", "content": "I need a cleaning, I'm patient P-7."},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "get_patient",
                            "arguments": {"patient_id": "P-7"},
                        },
                    }
                ],
            },
            {
                "role": "tool",
                "name": "get_patient",
                "tool_call_id": "call_1",
                "content": RESULT_TEXT,
            },
            {"role": "assistant", "content": ANSWER},
        ],
        "tools": SINGLE_TOOLS,
    }
    assert record == expected


def test_sharegpt_record_of_a_single_server_rollout():
    record = sharegpt_record(single_rollout(), SINGLE_POLICY, SINGLE_TOOLS)
    expected = META_SINGLE | {
        "conversations": [
            {"from": "human", "value": "I need a cleaning, I'm patient P-7."},
            {
                "from": "function_call",
                "value": '{"name": "get_patient", "arguments": {"patient_id": "P-7"}}',
            },
            {"from": "observation", "value": RESULT_TEXT},
            {"from": "gpt", "value": ANSWER},
        ],
        "system": SINGLE_POLICY,
        "tools": json.dumps([t["function"] for t in SINGLE_TOOLS], ensure_ascii=False),
    }
    assert record == expected


def test_sharegpt_puts_parallel_calls_in_one_turn_and_reasoning_in_a_think_block():
    """Text beside the calls has no place in a JSON-only function_call turn."""
    turns = sharegpt_record(fused_rollout(), FUSED_POLICY, FUSED_TOOLS)["conversations"]
    assert [t["from"] for t in turns] == [
        "human",
        "function_call",
        "observation",
        "function_call",
        "observation",
        "gpt",
    ]
    assert json.loads(turns[1]["value"]) == [
        {"name": "Billing__get_invoice", "arguments": {"invoice_id": "I-3"}},
        {"name": "DentalClinic__get_patient", "arguments": {"patient_id": "P-7"}},
    ]
    assert turns[2]["value"] == OBSERVATION_JOINER.join(
        ['{"invoice_id": "I-3", "due": 80.5}', '{"patient_id": "P-7"}']
    )
    thought, payload = turns[3]["value"].split("</think>\n\n")
    assert thought == "<think>\n80.5 is owed; pay exactly that.\n"
    assert json.loads(payload)["name"] == "Billing__pay_invoice"


def test_reasoning_is_kept_by_trl_and_dropped_by_openai():
    """OpenAI's fine-tuning format has no reasoning field."""
    trl = trl_record(fused_rollout(), FUSED_POLICY, FUSED_TOOLS)["messages"]
    openai = openai_record(fused_rollout(), FUSED_POLICY, FUSED_TOOLS)["messages"]
    assert [m.get("reasoning_content") for m in trl if m["role"] == "assistant"] == [
        None,
        "80.5 is owed; pay exactly that.",
        None,
    ]
    assert not any("reasoning_content" in m for m in openai)
    assert openai[2]["content"] == "Let me look both up."


@pytest.mark.parametrize(("rollout", "policy", "tools"), CASES)
def test_arguments_are_json_text_in_openai_and_objects_in_trl(rollout, policy, tools):
    openai = openai_record(rollout, policy, tools)
    trl = trl_record(rollout, policy, tools)
    openai_calls = [c for m in openai["messages"] for c in m.get("tool_calls", [])]
    trl_calls = [c for m in trl["messages"] for c in m.get("tool_calls", [])]
    assert openai_calls and len(openai_calls) == len(trl_calls)
    for text_call, object_call in zip(openai_calls, trl_calls, strict=True):
        assert isinstance(text_call["function"]["arguments"], str)
        assert isinstance(object_call["function"]["arguments"], dict)
        parsed = json.loads(text_call["function"]["arguments"])
        assert parsed == object_call["function"]["arguments"]


def _called_and_offered(fmt: str, record: dict) -> tuple[list[str], list[str]]:
    """The tool names a record calls, and the names of the schemas it offers."""
    if fmt == "sharegpt":
        calls = []
        for turn in record["conversations"]:
            if turn["from"] == "function_call":
                payload = json.loads(turn["value"].split("</think>\n\n")[-1])
                calls += payload if isinstance(payload, list) else [payload]
        offered = [t["name"] for t in json.loads(record["tools"])]
        return [c["name"] for c in calls], offered
    called = [
        c["function"]["name"]
        for m in record["messages"]
        for c in m.get("tool_calls", [])
    ]
    results = [m["tool_call_id"] for m in record["messages"] if m["role"] == "tool"]
    assert results == [
        c["id"] for m in record["messages"] for c in m.get("tool_calls", [])
    ]
    return called, [t["function"]["name"] for t in record["tools"]]


@pytest.mark.parametrize("fmt", EXPORT_FORMATS)
@pytest.mark.parametrize(("rollout", "policy", "tools"), CASES)
def test_every_called_tool_has_its_schema_under_the_same_name(
    fmt, rollout, policy, tools
):
    """The original wrote un-namespaced schemas next to namespaced calls."""
    record = RECORD_BUILDERS[fmt](rollout, policy, tools)
    called, offered = _called_and_offered(fmt, record)
    assert called
    assert set(called) <= set(offered)
    assert sorted(offered) == sorted(rollout.tool_names)


def test_un_namespaced_schemas_next_to_fused_calls_are_refused():
    bare = [
        json.loads(json.dumps(t).replace("Billing__", "").replace("DentalClinic__", ""))
        for t in FUSED_TOOLS
    ]
    for build in RECORD_BUILDERS.values():
        with pytest.raises(TrainingExportError) as caught:
            build(fused_rollout(), FUSED_POLICY, bare)
        assert caught.value.reason == "tool_namespace"


@pytest.mark.parametrize(
    "tools",
    [
        [{"type": "function", "function": {"name": "get_patient"}}],
        [SINGLE_TOOLS[0], SINGLE_TOOLS[0]],
        ["get_patient"],
    ],
)
def test_malformed_tool_schemas_are_refused(tools):
    with pytest.raises(TrainingExportError) as caught:
        openai_record(single_rollout(), SINGLE_POLICY, tools)
    assert caught.value.reason == "bad_tool_schema"


@pytest.mark.parametrize(("rollout", "policy", "tools"), CASES)
def test_sharegpt_turns_alternate_as_llama_factory_requires(rollout, policy, tools):
    """Human or observation at odd positions, gpt or function_call at even ones,
    an even count: anything else LLaMA-Factory skips as abnormal."""
    turns = sharegpt_record(rollout, policy, tools)["conversations"]
    assert len(turns) % 2 == 0
    for index, turn in enumerate(turns):
        odd = index % 2 == 0  # LLaMA-Factory counts from 1
        assert turn["from"] in (
            ("human", "observation") if odd else ("gpt", "function_call")
        )
    assert turns[-1]["from"] == "gpt"


def _result(rollout, *, passed: bool, **verdicts: bool) -> EvaluationResult:
    return EvaluationResult(
        id=rollout.id,
        trial=rollout.trial,
        environment=rollout.environment,
        domains=(rollout.environment,),
        passed=passed,
        total_score=1.0 if passed else 0.0,
        evaluators={
            name: Verdict(passed=ok, score=1.0 if ok else 0.0)
            for name, ok in verdicts.items()
        },
    )


def test_select_keeps_passing_rollouts_and_counts_the_rest():
    good, bad = single_rollout(trial=0), single_rollout(trial=1)
    unjudged = fused_rollout()
    results = [_result(bad, passed=False), _result(good, passed=True)]
    selection = select([unjudged, bad, good], results)
    assert selection.rollouts == (good,)
    assert selection.skipped == {"failed": 1, "no_result": 1}
    everything = select([unjudged, bad, good], results, only_passed=False)
    assert everything.rollouts == (good, bad)
    assert everything.skipped == {"no_result": 1}


def test_select_can_judge_by_one_evaluator():
    state_ok, no_state = single_rollout(trial=0), single_rollout(trial=1)
    results = [
        _result(state_ok, passed=False, state=True, action=False),
        _result(no_state, passed=True, action=True),
    ]
    selection = select([state_ok, no_state], results, evaluator="state")
    assert selection.rollouts == (state_ok,)
    assert selection.skipped == {"no_verdict": 1}


def test_select_refuses_two_results_for_one_rollout():
    rollout = single_rollout()
    with pytest.raises(ValueError, match="two evaluation results"):
        select([rollout], [_result(rollout, passed=True)] * 2)


def _rollouts() -> list:
    malformed = single_rollout(
        user("Hi"),
        assistant(None, call("a", "get_x")),
        result("a", {}),
        assistant("Done."),
        query_id="q-bad",
    )
    stranger = single_rollout(query_id="q-x").model_copy(
        update={"environment": "Elsewhere"}
    )
    return [
        fused_rollout(trial=1),
        single_rollout(trial=1),
        fused_rollout(trial=0),
        single_rollout(trial=0),
        malformed,
        stranger,
    ]


def test_exports_skip_unusable_rollouts_in_every_format_and_count_them():
    exports = training_exports(_rollouts(), system_prompts=SYSTEM_PROMPTS, tools=TOOLS)
    assert exports.records == 4
    assert exports.skipped == {"unknown_environment": 1, "unknown_tool": 1}
    for fmt in EXPORT_FORMATS:
        keys = [
            (r["environment"], r["id"], r["trial"])
            for r in map(json.loads, exports.files[fmt].splitlines())
        ]
        assert keys == [
            ("Billing_DentalClinic", "q-fused", 0),
            ("Billing_DentalClinic", "q-fused", 1),
            ("DentalClinic", "q-single", 0),
            ("DentalClinic", "q-single", 1),
        ]


def test_exports_are_the_same_bytes_whatever_the_input_order():
    rollouts = _rollouts()
    first = training_exports(rollouts, system_prompts=SYSTEM_PROMPTS, tools=TOOLS)
    random.Random(7).shuffle(rollouts)
    again = training_exports(rollouts, system_prompts=SYSTEM_PROMPTS, tools=TOOLS)
    assert again == first
    assert "Zoë Ünal" in first.files["openai"]  # UTF-8 kept, not \u escapes


def test_written_exports_load_with_datasets_unchanged(tmp_path):
    """Tool schemas and arguments differ in shape across records; `datasets` (4.8
    or later) must neither refuse them nor pad them with nulls."""
    from datasets import load_dataset

    store = ArtifactStore(OutputLayout(tmp_path / "out"))
    exports = training_exports(_rollouts(), system_prompts=SYSTEM_PROMPTS, tools=TOOLS)
    paths = write_training_exports(store, exports)
    assert {fmt: store.layout.relpath(p) for fmt, p in paths.items()} == {
        fmt: f"exports/{fmt}.jsonl" for fmt in EXPORT_FORMATS
    }
    for fmt, path in paths.items():
        assert path.read_text(encoding="utf-8") == exports.files[fmt]
        dataset = load_dataset(
            "json",
            data_files=str(path),
            split="train",
            cache_dir=str(tmp_path / "hf-cache"),
        )
        written = [json.loads(line) for line in exports.files[fmt].splitlines()]
        assert dataset.num_rows == len(written) == 4
        assert list(dataset) == written, fmt


def test_exports_refuse_a_rollout_listed_twice():
    """Two records for one (query, trial) would make the bytes depend on input order."""
    with pytest.raises(ValueError, match="listed twice"):
        training_exports(
            [single_rollout(), single_rollout()],
            system_prompts=SYSTEM_PROMPTS,
            tools=TOOLS,
        )

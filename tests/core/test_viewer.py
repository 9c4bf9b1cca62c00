"""The rollout viewer page: its data, its escaping, and that it is self-contained.

The page's script is exercised in a real browser in `test_viewer_browser.py`."""

from __future__ import annotations

import json
import re

from tasks.core.viewer import embed_json, render_viewer, viewer_data
from tests import rollout_fixtures as fx

DATA_BLOCK = re.compile(
    r'<script type="application/json" id="viewer-data">(.*?)</script>', re.S
)
HOSTILE = '</script><script>alert("x")</script><!-- & <img src=x onerror=alert(1)>'


def _data() -> dict:
    return viewer_data(fx.rollouts(), fx.results(), fx.golden_tasks())


def _by_key() -> dict[str, dict]:
    return {r["key"]: r for r in _data()["rollouts"]}


def _embedded(page: str) -> dict:
    [block] = DATA_BLOCK.findall(page)
    return json.loads(block)


def test_each_rollout_has_its_outcome_and_failing_evaluators():
    """Passed, failed (with the evaluators that failed, or `error`), and not
    evaluated when no result matches (query id, trial)."""
    assert {k: (r["outcome"], r["failing"]) for k, r in _by_key().items()} == {
        "q-cancel#0": ("passed", []),
        "q-cancel#1": ("failed", ["action", "state"]),
        "q-book#0": ("failed", ["action", "state"]),
        "q-book#1": ("failed", ["error"]),
        "q-extra#0": ("unevaluated", []),
    }


def test_rollouts_are_ordered_by_environment_query_and_trial():
    """A stable order: the same inputs in any order give the same list."""
    keys = [r["key"] for r in _data()["rollouts"]]
    assert keys == ["q-cancel#0", "q-cancel#1", "q-extra#0", "q-book#0", "q-book#1"]
    shuffled = viewer_data(
        reversed(fx.rollouts()), reversed(fx.results()), fx.golden_tasks()
    )
    assert shuffled == _data()


def test_domains_come_from_the_result_else_the_task_else_the_environment():
    """A fused rollout lists its member domains; an unevaluated one without a
    golden task falls back to its environment."""
    rows = _by_key()
    assert rows["q-book#0"]["domains"] == list(fx.FUSED_DOMAINS)
    assert rows["q-extra#0"]["domains"] == [fx.CLINIC]


def test_tool_calls_are_pretty_printed_and_malformed_arguments_kept_as_written():
    """Arguments that are a JSON object are indented; anything else is flagged and
    shown exactly as the model wrote it."""
    messages = _by_key()["q-book#0"]["messages"]
    [good] = messages[1]["calls"]
    assert (
        good["arguments"] == '{\n  "patient_id": "pat_002",\n  "slot_id": "slot_9"\n}'
    )
    assert good["malformed"] is False
    [bad] = messages[3]["calls"]
    assert bad == {
        "id": "b0b",
        "name": "TreatmentBilling__create_invoice",
        "route": None,
        "arguments": '{"amount": 80,',
        "malformed": True,
    }


def test_tool_results_name_their_call_and_are_indented_when_json():
    """A tool message carries the name of the call it answers; JSON content is
    indented, other text is kept."""
    messages = _by_key()["q-book#0"]["messages"]
    assert messages[2] == {
        "role": "tool",
        "text": '{\n  "appointment_id": "apt_42"\n}',
        "call_id": "b0a",
        "name": "DentalAppointments__book_appointment",
    }
    assert messages[4]["text"] == "error: arguments are not a JSON object"


def test_the_state_diff_is_compared_with_the_golden_one_per_table():
    """The wrong cancellation shows the golden update as missing and the agent's
    as unexpected, old and new values side by side; the hashes differ."""
    row = _by_key()["q-cancel#1"]
    assert row["hash_match"] is False
    assert row["diff"][0] == {
        "table": "appointments",
        "matches": False,
        "changes": [
            {
                "kind": "updated",
                "row": "apt_17",
                "column": "status",
                "expected": '"scheduled" \u2192 "cancelled"',
                "actual": None,
                "status": "missing",
            },
            {
                "kind": "updated",
                "row": "apt_18",
                "column": "status",
                "expected": None,
                "actual": '"scheduled" \u2192 "cancelled"',
                "status": "unexpected",
            },
        ],
    }
    passed = _by_key()["q-cancel#0"]
    assert passed["hash_match"] is True
    assert all(t["matches"] for t in passed["diff"])


def test_a_rollout_without_golden_task_or_result_is_still_shown():
    """No golden task: no hash comparison, no golden calls; no result: no verdicts."""
    row = _by_key()["q-extra#0"]
    assert (row["has_golden"], row["hash_match"], row["golden_calls"]) == (
        False,
        None,
        [],
    )
    assert row["verdicts"] == [] and row["outcome"] == "unevaluated"
    assert row["stop"] == "turn limit reached"


def test_verdicts_and_the_original_scoring_are_listed_with_details():
    """Each evaluator's verdict (sorted) with pretty-printed details; the legacy
    verdicts apart."""
    row = _by_key()["q-cancel#1"]
    assert [v["name"] for v in row["verdicts"]] == ["action", "nl_assertions", "state"]
    action = row["verdicts"][0]
    assert action["details"] == (
        '{\n  "mismatched_arguments": {\n    "appointment_id": "apt_18"\n  }\n}'
    )
    assert row["verdicts"][1]["skipped"] is True
    assert row["legacy"][0]["reasoning"] == "tool names match"


def test_stop_metadata_is_described():
    """The control token that ended a conversation, or the error that cut it."""
    rows = _by_key()
    assert rows["q-cancel#0"]["stop"] == "user sent ###STOP###"
    assert rows["q-book#1"]["stop"] == "cut short by an error"
    assert (
        rows["q-book#1"]["error"] == "assistant endpoint unreachable after 3 attempts"
    )


def test_model_text_cannot_break_out_of_the_data_block():
    """A message with `</script>`, an HTML comment and an event handler appears
    only as JSON escapes: the page keeps exactly its two script elements, and the
    data reads back unchanged."""
    [first, *rest] = fx.rollouts()
    hostile = first.model_copy(
        update={"messages": (fx.user(HOSTILE), *first.messages[1:])}
    )
    page = render_viewer([hostile, *rest], fx.results(), fx.golden_tasks())
    assert page.count("<script") == 2
    assert "<script>alert" not in page
    assert "<img" not in page and "<!-- &" not in page
    data = _embedded(page)
    assert data["rollouts"][0]["messages"][0]["text"] == HOSTILE


def test_embedded_json_has_no_angle_brackets_or_ampersands():
    """`<`, `>` and `&` are written as \\u escapes and parse back to themselves."""
    text = embed_json({"a": "</script> & <b>"})
    assert not set("<>&") & set(text)
    assert json.loads(text) == {"a": "</script> & <b>"}


def test_the_page_is_self_contained_and_fetches_nothing():
    """Inline style and script, no external URL, and a policy forbidding fetches."""
    page = render_viewer(fx.rollouts(), fx.results(), fx.golden_tasks())
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and " src=" not in page
    assert "default-src 'none'" in page
    assert "{{" not in page


def test_the_title_is_escaped_and_the_same_input_gives_the_same_page():
    """The title is text; rendering is deterministic."""
    args = (fx.rollouts(), fx.results(), fx.golden_tasks())
    page = render_viewer(*args, title="<b>run</b>")
    assert "<title>&lt;b&gt;run&lt;/b&gt;</title>" in page
    assert page == render_viewer(*args, title="<b>run</b>")


def test_skipped_input_items_are_carried_into_the_page():
    """The counts of unreadable lines reach the page, sorted by reason."""
    page = render_viewer(
        fx.rollouts(),
        [],
        {},
        skipped={"truncated_line": 1, "invalid_record": 2},
    )
    data = _embedded(page)
    assert data["skipped"] == {"invalid_record": 2, "truncated_line": 1}
    assert {r["outcome"] for r in data["rollouts"]} == {"unevaluated"}

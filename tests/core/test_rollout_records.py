"""Reading rollout JSONL and joining rollouts to queries: bad items are reported
one by one, and nothing else is lost."""

from __future__ import annotations

import json

from schemas.rollout import ChatMessage, Rollout
from tasks.core.rollout_records import Skipped, join_queries, read_rollouts


def rollout(query: str, trial: int = 0) -> Rollout:
    return Rollout(
        id=query,
        trial=trial,
        environment="DentalAppointments",
        messages=(ChatMessage(role="user", content="hello"),),
        success=True,
        stop_reason="max_turns",
        reached_max_turns=True,
        total_turns=20,
    )


def line(r: Rollout) -> str:
    return json.dumps(r.record())


def test_records_written_by_record_read_back_equal():
    rollouts = [rollout("q-1"), rollout("q-1", 1), rollout("q-2")]
    text = "".join(line(r) + "\n" for r in rollouts)
    read = read_rollouts(text, source="DentalAppointments.jsonl")
    assert read.rollouts == rollouts
    assert read.skipped.counts == {} and read.skipped.problems == []


def test_a_truncated_last_line_is_reported_with_its_file_and_line():
    whole = [rollout("q-1"), rollout("q-2")]
    cut = line(rollout("q-3"))[:40]
    text = "\n".join(line(r) for r in whole) + "\n\n" + cut
    read = read_rollouts(text, source="rollouts/DentalAppointments.jsonl")
    assert read.rollouts == whole
    assert read.skipped.counts == {"truncated_line": 1}
    [problem] = read.skipped.problems
    assert problem.startswith(
        "rollouts/DentalAppointments.jsonl:4: truncated last line"
    )


def test_bad_lines_in_the_middle_are_skipped_each_with_a_reason():
    text = "\n".join(
        [
            line(rollout("q-1")),
            "{not json",
            "[1, 2]",
            json.dumps({"id": "q-9", "messages": []}),
            line(rollout("q-2")),
            "",
        ]
    )
    read = read_rollouts(text, source="r.jsonl")
    assert [r.id for r in read.rollouts] == ["q-1", "q-2"]
    assert read.skipped.counts == {"invalid_json": 1, "invalid_record": 2}
    assert [p.split(":")[1] for p in read.skipped.problems] == ["2", "3", "4"]
    assert "not a rollout record" in read.skipped.problems[2]


def test_a_last_line_with_its_newline_that_does_not_parse_is_invalid_not_truncated():
    read = read_rollouts(line(rollout("q-1")) + "\n{oops\n", source="r.jsonl")
    assert read.skipped.counts == {"invalid_json": 1}


def test_rollouts_whose_id_matches_no_query_are_reported_as_unknown_query():
    rollouts = [rollout("q-1"), rollout("q-404", 2), rollout("q-1", 1)]
    joined = join_queries(rollouts, {"q-1": "task one"})
    assert joined.pairs == [("task one", rollouts[0]), ("task one", rollouts[2])]
    assert joined.skipped.counts == {"unknown_query": 1}
    assert joined.skipped.problems == [
        "rollout q-404#2 (DentalAppointments): no query with id 'q-404'"
    ]


def test_skipped_items_of_several_steps_add_up():
    total = Skipped()
    total.extend(read_rollouts("{cut", source="a.jsonl").skipped)
    total.extend(join_queries([rollout("q-9")], {}).skipped)
    assert total.counts == {"truncated_line": 1, "unknown_query": 1}
    assert len(total.problems) == 2

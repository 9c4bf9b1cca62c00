"""Tests for the SEARCH/REPLACE block editor: parsing, matching modes and the
failure report sent back to the model."""

import pydantic
import pytest

from schemas.edit import BlockResult, EditBlock, EditOutcome, MalformedBlock
from tasks.core.block_editor import (
    apply_edit_answer,
    apply_edits,
    format_edit_block,
    parse_edit_blocks,
)

SOURCE = """\
def total(items):
    result = 0
    for item in items:
        result += item.price
    return result


def count(items):
    return len(items)
"""


def _block(search: str, replace: str, index: int = 0) -> EditBlock:
    return EditBlock(search=search, replace=replace, index=index)


def test_blocks_inside_markdown_fences_are_parsed_verbatim():
    """Fences and marker indentation are ignored; block lines are kept as written."""
    answer = (
        "Fix:\n```python\n  <<<<<<< SEARCH\n    return result\n=========\n"
        "    return round(result, 2)\n>>>>>>>>> REPLACE\n```\n"
        "<<<<<<<< SEARCH>\n\n=====\nnew line\n>>>>> REPLACE\n"
    )
    parsed = parse_edit_blocks(answer)
    assert parsed.blocks == (
        _block("    return result\n", "    return round(result, 2)\n", 0),
        _block("\n", "new line\n", 1),
    )
    assert parsed.malformed == ()


def test_malformed_blocks_are_reported_and_later_blocks_still_parse():
    """A missing divider, a missing terminator and a stray terminator are data."""
    answer = (
        "<<<<<<< SEARCH\nfoo\n>>>>>>> REPLACE\n"
        "<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n"
        ">>>>>>> REPLACE\n"
        "<<<<<<< SEARCH\nc\n=======\nd\n"
    )
    parsed = parse_edit_blocks(answer)
    assert parsed.blocks == (_block("a\n", "b\n", 1),)
    assert parsed.malformed == (
        MalformedBlock(
            index=0,
            line=1,
            missing="divider",
            text="<<<<<<< SEARCH\nfoo\n>>>>>>> REPLACE",
        ),
        MalformedBlock(index=2, line=9, missing="head", text=">>>>>>> REPLACE"),
        MalformedBlock(
            index=3,
            line=10,
            missing="terminator",
            text="<<<<<<< SEARCH\nc\n=======\nd",
        ),
    )


def test_a_block_cut_short_by_the_next_head_is_malformed():
    """A head inside an open block closes it as malformed and starts a new one."""
    parsed = parse_edit_blocks(
        "<<<<<<< SEARCH\nx\n<<<<<<< SEARCH\ny\n=======\nz\n>>>>>>> REPLACE\n"
    )
    assert parsed.blocks == (_block("y\n", "z\n", 1),)
    assert [(m.index, m.missing) for m in parsed.malformed] == [(0, "divider")]


def test_formatted_block_parses_back_to_itself():
    """`format_edit_block` writes the grammar the parser reads."""
    block = _block("a\n  b\n", "c\n", 0)
    assert parse_edit_blocks(format_edit_block(block)).blocks == (block,)


def test_exact_match_replaces_the_lines_and_reports_nothing():
    """A unique exact match is applied; the outcome succeeds with an empty report."""
    outcome = apply_edits(
        SOURCE,
        [_block("    return len(items)\n", "    return sum(1 for _ in items)\n")],
    )
    assert outcome.text == SOURCE.replace(
        "return len(items)", "return sum(1 for _ in items)"
    )
    assert outcome.results == (
        BlockResult(index=0, status="applied", detail="exact match at line 9"),
    )
    assert outcome.changed and outcome.succeeded
    assert outcome.report == ""


def test_search_text_found_twice_is_an_ambiguity_failure_with_the_count():
    """A search matching two places is not applied to the first one."""
    source = "x = 1\ny = 2\nx = 1\n"
    outcome = apply_edits(source, [_block("x = 1\n", "x = 3\n")])
    assert outcome.text == source
    assert not outcome.changed
    assert outcome.results == (
        BlockResult(
            index=0,
            status="ambiguous",
            detail="SEARCH text matches 2 places (lines 1, 3)",
        ),
    )
    assert "### Block 1: SEARCH text matches 2 places (lines 1, 3)" in outcome.report
    assert "matches one place" in outcome.report


def test_indentation_tolerant_match_reindents_the_replacement():
    """Search written at column 0 matches indented lines; the replacement follows."""
    block = _block(
        "for item in items:\n    result += item.price\n",
        "for item in items:\n    if item.active:\n        result += item.price\n",
    )
    outcome = apply_edits(SOURCE, [block])
    assert outcome.text == SOURCE.replace(
        "    for item in items:\n        result += item.price\n",
        "    for item in items:\n        if item.active:\n"
        "            result += item.price\n",
    )
    assert outcome.results[0].detail == (
        "indentation-tolerant match (re-indented by '    ') at line 3"
    )


def test_over_indented_search_is_outdented_to_match():
    """Extra indentation in SEARCH and REPLACE is removed before matching."""
    outcome = apply_edits("a\nb\n", [_block("        a\n", "        c\n")])
    assert outcome.text == "c\nb\n"


def test_leading_blank_search_line_is_dropped_when_it_blocks_the_match():
    """A blank first SEARCH line absent from the file does not prevent a match."""
    outcome = apply_edits(
        "a\nb\nc\n", [_block("\nb\nc\n", "\nB\nc\n"), _block("a\n\n", "A\n\n", 1)]
    )
    assert outcome.text == "A\nB\nc\n"
    assert outcome.failed == ()


def test_elision_mode_replaces_each_piece_that_occurs_once():
    """Pieces between `...` lines are matched and replaced one by one."""
    block = _block(
        "def total(items):\n...\n    return result\n",
        "def total(items: list) -> int:\n...\n    return int(result)\n",
    )
    outcome = apply_edits(SOURCE, [block])
    assert outcome.text == SOURCE.replace(
        "def total(items):", "def total(items: list) -> int:"
    ).replace("return result", "return int(result)")
    assert outcome.results[0].detail == "applied in elision mode (2 parts)"


def test_elision_piece_found_twice_is_ambiguous_and_nothing_changes():
    """One ambiguous piece fails the whole block; no piece is applied."""
    block = _block("def f():\n...\nmark\n", "def g():\n...\nMARK\n")
    source = "def f():\n    pass\nmark\nmark\n"
    outcome = apply_edits(source, [block])
    assert outcome.text == source
    assert outcome.results == (
        BlockResult(
            index=0,
            status="ambiguous",
            detail="part 2 of the elided SEARCH matches 2 places (lines 3, 4)",
        ),
    )


def test_elision_with_unpaired_ellipsis_lines_is_no_match():
    """SEARCH and REPLACE must have the same number of `...` lines."""
    outcome = apply_edits(SOURCE, [_block("def total(items):\n...\n", "x\n")])
    assert outcome.results[0] == BlockResult(
        index=0,
        status="no_match",
        detail="SEARCH has 1 '...' lines but REPLACE has 0; they must pair up",
    )


def test_empty_search_appends_after_a_missing_final_newline():
    """An empty SEARCH appends the replacement on its own line."""
    outcome = apply_edits("a = 1", [_block("", "b = 2\n")])
    assert outcome.text == "a = 1\nb = 2\n"
    assert outcome.results[0].detail == "appended at the end"


def test_fenced_search_and_replace_texts_are_unwrapped():
    """Code fences around both texts inside the block do not prevent a match."""
    block = _block("```python\nb = 2\n```\n", "```python\nb = 3\n```\n")
    assert apply_edits("a = 1\nb = 2\n", [block]).text == "a = 1\nb = 3\n"


def test_windows_line_endings_are_kept():
    """A CRLF file stays CRLF after an edit."""
    outcome = apply_edits("a\r\nb\r\nc\r\n", [_block("b\n", "B\n")])
    assert outcome.text == "a\r\nB\r\nc\r\n"


def test_no_match_report_echoes_the_block_and_shows_a_numbered_excerpt():
    """The report repeats the block and the most similar lines with numbers."""
    block = _block(
        "def count(items):\n    return len(item)\n",
        "def count(items):\n    return 0\n",
    )
    outcome = apply_edits(SOURCE, [block])
    assert outcome.results == (
        BlockResult(index=0, status="no_match", detail="SEARCH text not found"),
    )
    assert not outcome.changed and not outcome.succeeded
    assert "### Block 1: SEARCH text not found" in outcome.report
    assert format_edit_block(block).strip() in outcome.report
    assert (
        "Did you mean lines 3-9 of the current file?\n\n```\n"
        "3 |     for item in items:\n"
        "4 |         result += item.price\n"
        "5 |     return result\n"
        "6 | \n"
        "7 | \n"
        "8 | def count(items):\n"
        "9 |     return len(items)\n```"
    ) in outcome.report


def test_dissimilar_search_gets_no_excerpt():
    """Below a 0.6 similarity ratio the report says no similar lines exist."""
    outcome = apply_edits(SOURCE, [_block("zzzzzz qqqq\n", "x\n")])
    assert "No similar lines were found in the current file." in outcome.report
    assert "Did you mean" not in outcome.report


def test_block_whose_replacement_is_present_is_already_applied_not_failed():
    """A resent block that was applied before is skipped, not counted as failed."""
    block = _block("    return len(items)\n", "    return sum(1 for _ in items)\n")
    first = apply_edits(SOURCE, [block])
    second = apply_edits(first.text, [block])
    assert second.results == (
        BlockResult(
            index=0,
            status="already_applied",
            detail="SEARCH text not found, but the REPLACE text is already at line 9",
        ),
    )
    assert second.failed == ()
    assert second.text == first.text
    assert "### Block 1: already applied" in second.report
    assert "Do not resend it." in second.report


def test_failed_block_report_notes_a_replacement_already_present():
    """An ambiguous block whose REPLACE text exists gets the already-present note."""
    outcome = apply_edits("x\ny\nx\n", [_block("x\n", "y\n")])
    assert outcome.results[0].status == "ambiguous"
    assert "Its REPLACE text is already in the file (line 2)" in outcome.report


def test_failures_are_counted_by_block_not_by_text_in_the_report():
    """A short applied block whose text appears in the report is not a failure."""
    blocks = [
        _block("a\n", "A\n", 0),
        _block("b\nA\nc\n", "B\n", 1),
    ]
    outcome = apply_edits("a\nb\n", blocks)
    assert outcome.applied == (0,)
    assert outcome.failed == (1,)
    assert outcome.text == "A\nb\n"
    assert outcome.report.startswith(
        "## 1 of 2 SEARCH/REPLACE blocks failed: block 2\n"
    )
    assert (
        "Already in the current file: block 1. Resend only block 2, rewritten "
        "against the current file." in outcome.report
    )


def test_answer_without_blocks_keeps_the_original_error_in_the_report():
    """The model is told no blocks were found and is shown the error again."""
    outcome = apply_edit_answer(
        SOURCE, "I think it works now.", original_error="AssertionError: 3 != 4"
    )
    assert outcome.results == ()
    assert not outcome.changed
    assert outcome.report.startswith("Your answer contained no SEARCH/REPLACE blocks")
    assert outcome.report.endswith(
        "## The problem to fix (unchanged)\n\n```\nAssertionError: 3 != 4\n```\n"
    )


def test_original_error_is_not_repeated_once_the_text_changed():
    """After a partial success the caller reruns and gets a fresh error."""
    blocks = [_block("a\n", "A\n", 0), _block("zz\n", "y\n", 1)]
    outcome = apply_edits("a\nb\n", blocks, original_error="Boom")
    assert outcome.changed
    assert "Boom" not in outcome.report


def test_malformed_block_appears_in_results_and_report_with_its_line():
    """The parser's malformed blocks are reported by apply, with what is missing."""
    answer = "intro\n<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n"
    outcome = apply_edit_answer("a\n", answer, original_error="E")
    assert outcome.results == (
        BlockResult(
            index=0,
            status="malformed",
            detail="it has no ======= line after the SEARCH text",
        ),
    )
    assert (
        "### Block 1 (line 2 of your answer): malformed, it has no ======= line "
        "after the SEARCH text"
    ) in outcome.report
    assert "```\nE\n```" in outcome.report


def test_edit_that_would_empty_the_file_is_rejected():
    """Deleting every line is never returned as a successful edit."""
    outcome = apply_edits("a\nb\n", [_block("a\nb\n", "")])
    assert outcome.results == (
        BlockResult(index=0, status="rejected", detail="it would leave the file empty"),
    )
    assert outcome.text == "a\nb\n"
    assert not outcome.succeeded


def test_empty_block_is_rejected():
    """A block with no SEARCH and no REPLACE text is a failure."""
    outcome = apply_edits("a\n", [_block("", "")])
    assert outcome.failed == (0,)


def test_outcome_cannot_claim_a_change_to_an_empty_text():
    """The schema refuses a changed outcome whose text is blank."""
    with pytest.raises(pydantic.ValidationError, match="must not change a text"):
        EditOutcome(text="\n", changed=True, results=())


def test_report_fence_is_longer_than_backticks_inside_the_block():
    """A block holding a code fence is echoed inside a longer fence."""
    outcome = apply_edits("a\n", [_block("```\nb\n", "c\n")])
    assert "````\n<<<<<<< SEARCH\n```\nb\n" in outcome.report

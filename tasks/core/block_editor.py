"""SEARCH/REPLACE block editor for the repair loops: takes a model answer and the
current text (code or markdown) plus the error that prompted the repair; returns the
parsed blocks (malformed ones reported, never raised) and an `EditOutcome` with the
new text, one result per block and a model-readable report naming each failed
block; pure functions on strings, no I/O."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from schemas.edit import (
    BlockResult,
    EditBlock,
    EditOutcome,
    MalformedBlock,
    ParsedEdits,
)
from tasks.core.block_matching import (
    ELLIPSIS_LINE,
    Document,
    apply_block,
    find_matches,
    is_blank,
    join_lines,
    split_lines,
    trim_blank_ends,
)

HEAD_LINE = "<<<<<<< SEARCH"
DIVIDER_LINE = "======="
TAIL_LINE = ">>>>>>> REPLACE"
SIMILARITY_THRESHOLD = 0.6
"""Minimum difflib ratio for a "did you mean" excerpt."""
EXCERPT_CONTEXT = 5
"""Lines shown around a similar window whose first or last line differs."""

_HEAD = re.compile(r"^<{5,9} ?SEARCH>?$")
_DIVIDER = re.compile(r"^={5,9}$")
_TAIL = re.compile(r"^>{5,9} ?REPLACE$")


def parse_edit_blocks(text: str) -> ParsedEdits:
    """Find the SEARCH/REPLACE blocks of a model answer.

    Marker lines are matched after stripping, so indentation and surrounding
    markdown fences do not matter; the lines between markers are kept verbatim. A
    block that lacks its divider or terminator (it runs into the next head or the
    end of the answer), and a terminator with no block open, is recorded as
    malformed; parsing then resumes, so one broken block never hides the others.

    Args:
        text: The model answer.

    Returns:
        The blocks and malformed blocks, numbered together in answer order.
    """
    lines = split_lines(text)
    blocks: list[EditBlock] = []
    malformed: list[MalformedBlock] = []
    i = 0
    while i < len(lines):
        marker = lines[i].strip()
        if _TAIL.match(marker):
            index = len(blocks) + len(malformed)
            malformed.append(
                MalformedBlock(index=index, line=i + 1, missing="head", text=lines[i])
            )
            i += 1
            continue
        if not _HEAD.match(marker):
            i += 1
            continue
        index, start = len(blocks) + len(malformed), i
        i, search, found = _read_until(lines, i + 1, _DIVIDER, stop=(_HEAD, _TAIL))
        if not found:
            # A terminator that ends a block without a divider belongs to that block.
            if i < len(lines) and _TAIL.match(lines[i].strip()):
                i += 1
            raw = "\n".join(lines[start:i])
            malformed.append(
                MalformedBlock(index=index, line=start + 1, missing="divider", text=raw)
            )
            continue
        i, replace, found = _read_until(lines, i + 1, _TAIL, stop=(_HEAD,))
        if not found:
            raw = "\n".join(lines[start:i])
            malformed.append(
                MalformedBlock(
                    index=index, line=start + 1, missing="terminator", text=raw
                )
            )
            continue
        blocks.append(
            EditBlock(
                search=join_lines(search), replace=join_lines(replace), index=index
            )
        )
        i += 1
    return ParsedEdits(blocks=tuple(blocks), malformed=tuple(malformed))


def _read_until(
    lines: list[str], i: int, end: re.Pattern[str], stop: tuple[re.Pattern[str], ...]
) -> tuple[int, list[str], bool]:
    """Collect lines up to a marker; stop early (unfound) at another marker."""
    collected = []
    while i < len(lines):
        marker = lines[i].strip()
        if end.match(marker):
            return i, collected, True
        if any(pattern.match(marker) for pattern in stop):
            return i, collected, False
        collected.append(lines[i])
        i += 1
    return i, collected, False


def apply_edits(
    source: str,
    edits: ParsedEdits | Sequence[EditBlock],
    *,
    original_error: str = "",
) -> EditOutcome:
    """Apply SEARCH/REPLACE blocks to a text, in order.

    Each block is tried as an exact whole-line match, then an indentation-tolerant
    match (the replacement is re-indented), then both again without blank lines
    at the ends of SEARCH and without a wrapping code fence, then in "..." elision
    mode. A search text found in more than one place is an ambiguity failure, not
    a first-match edit. An empty search appends. A block whose search is missing
    but whose replacement is already present is `already_applied`. A block that
    would leave the text empty is `rejected`.

    Args:
        source: The current text.
        edits: The parsed answer (its malformed blocks are reported too), or blocks.
        original_error: The problem the edits were asked to fix; the report repeats
            it when the text did not change, so the model never loses it.

    Returns:
        The new text, one result per block in answer order, and the report (empty
        when every block applied).
    """
    if isinstance(edits, ParsedEdits):
        blocks, malformed = edits.blocks, edits.malformed
    else:
        blocks, malformed = tuple(edits), ()
    doc = Document.of(source)
    results = [apply_block(doc, block) for block in blocks]
    results += [
        BlockResult(index=m.index, status="malformed", detail=_MISSING[m.missing])
        for m in malformed
    ]
    results.sort(key=lambda result: result.index)
    text = doc.text() if doc.changed else source
    changed = text != source
    report = _report(
        results,
        {block.index: block for block in blocks},
        {m.index: m for m in malformed},
        doc.lines,
        original_error if not changed else "",
    )
    return EditOutcome(
        text=text, changed=changed, results=tuple(results), report=report
    )


def apply_edit_answer(
    source: str, answer: str, *, original_error: str = ""
) -> EditOutcome:
    """Parse a model answer and apply its blocks; see `apply_edits`.

    Args:
        source: The current text.
        answer: The model answer holding SEARCH/REPLACE blocks.
        original_error: The problem the edits were asked to fix.

    Returns:
        The edit outcome.
    """
    return apply_edits(source, parse_edit_blocks(answer), original_error=original_error)


def format_edit_block(block: EditBlock) -> str:
    """Render a block in the grammar `parse_edit_blocks` reads."""
    return f"{HEAD_LINE}\n{block.search}{DIVIDER_LINE}\n{block.replace}{TAIL_LINE}\n"


_MISSING = {
    "divider": "it has no ======= line after the SEARCH text",
    "terminator": "it has no >>>>>>> REPLACE line after the REPLACE text",
    "head": "a >>>>>>> REPLACE line with no <<<<<<< SEARCH line before it",
}


def _report(
    results: list[BlockResult],
    blocks: dict[int, EditBlock],
    malformed: dict[int, MalformedBlock],
    lines: list[str],
    original_error: str,
) -> str:
    """Markdown for the model; failures are named by block number, never guessed."""
    if not results:
        parts = [_NO_BLOCKS]
    else:
        notable = [result for result in results if result.status != "applied"]
        if not notable:
            return ""
        failed = [result for result in results if result.failed]
        kept = [result for result in results if not result.failed]
        parts = []
        if failed:
            parts.append(
                f"## {len(failed)} of {len(results)} SEARCH/REPLACE blocks failed: "
                f"{_numbers(failed)}"
            )
        for result in notable:
            block, broken = blocks.get(result.index), malformed.get(result.index)
            parts.append(_describe(result, block, broken, lines))
        if failed and kept:
            parts.append(
                f"Already in the current file: {_numbers(kept)}. Resend only "
                f"{_numbers(failed)}, rewritten against the current file."
            )
    if original_error.strip():
        parts.append("## The problem to fix (unchanged)\n\n" + _fence(original_error))
    return "\n\n".join(parts) + "\n"


_NO_BLOCKS = (
    "Your answer contained no SEARCH/REPLACE blocks, so nothing was changed. Reply "
    "with blocks of this form:\n\n"
    f"{HEAD_LINE}\nexact lines copied from the file\n{DIVIDER_LINE}\n"
    f"the lines that replace them\n{TAIL_LINE}"
)
_EXACTNESS = (
    "SEARCH must copy lines of the current file exactly, with their whitespace, "
    "comments and blank lines, and match one place only."
)


def _describe(
    result: BlockResult,
    block: EditBlock | None,
    broken: MalformedBlock | None,
    lines: list[str],
) -> str:
    number = result.index + 1
    if broken is not None:
        return (
            f"### Block {number} (line {broken.line} of your answer): malformed, "
            f"{result.detail}\n\n{_fence(broken.text)}\n\nEach block "
            f"needs a `{HEAD_LINE}` line, the lines to find, a `{DIVIDER_LINE}` line, "
            f"the new lines and a `{TAIL_LINE}` line."
        )
    assert block is not None, "every result comes from a block or a malformed block"
    if result.status == "already_applied":
        return (
            f"### Block {number}: already applied\n\n{result.detail.capitalize()}, "
            "so it was skipped. Do not resend it."
        )
    parts = [f"### Block {number}: {result.detail}", _fence(format_edit_block(block))]
    search = [
        line for line in split_lines(block.search) if line.strip() != ELLIPSIS_LINE
    ]
    if result.status == "no_match":
        parts.append(_did_you_mean(lines, trim_blank_ends(search, [])[0]))
    replace = split_lines(block.replace)
    present = find_matches(lines, replace, replace) if not is_blank(replace) else []
    if present and result.status != "rejected":
        parts.append(
            f"Its REPLACE text is already in the file (line {present[0].start + 1}); "
            "if that is the change you wanted, drop this block."
        )
    if result.status == "ambiguous":
        parts.append("Add unchanged lines around it so that it matches one place.")
    elif result.status == "no_match":
        parts.append(_EXACTNESS)
    return "\n\n".join(parts)


def _did_you_mean(lines: list[str], search: list[str]) -> str:
    window = _most_similar(lines, search)
    if window is None:
        return "No similar lines were found in the current file."
    start, stop = window
    if lines[start] != search[0] or lines[stop - 1] != search[-1]:
        start = max(0, start - EXCERPT_CONTEXT)
        stop = min(len(lines), stop + EXCERPT_CONTEXT)
    width = len(str(stop))
    numbered = "\n".join(
        f"{number:>{width}} | {line}"
        for number, line in enumerate(lines[start:stop], start=start + 1)
    )
    return f"Did you mean lines {start + 1}-{stop} of the current file?\n\n" + _fence(
        numbered
    )


def _most_similar(lines: list[str], search: list[str]) -> tuple[int, int] | None:
    """The first window most like `search` by difflib ratio, if it reaches 0.6."""
    size = min(len(search), len(lines))
    if not size:
        return None
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2("\n".join(search))
    best: tuple[int, int] | None = None
    floor = SIMILARITY_THRESHOLD
    for start in range(len(lines) - size + 1):
        matcher.set_seq1("\n".join(lines[start : start + size]))
        if matcher.real_quick_ratio() < floor or matcher.quick_ratio() < floor:
            continue
        ratio = matcher.ratio()
        if ratio >= floor and (best is None or ratio > floor):
            best, floor = (start, start + size), ratio
    return best


def _numbers(results: list[BlockResult]) -> str:
    numbers = [str(result.index + 1) for result in results]
    if len(numbers) == 1:
        return f"block {numbers[0]}"
    return f"blocks {', '.join(numbers[:-1])} and {numbers[-1]}"


def _fence(text: str) -> str:
    """Wrap text in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}\n{text.rstrip(chr(10))}\n{ticks}"

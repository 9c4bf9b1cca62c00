"""SEARCH/REPLACE block editor for the repair loops: takes a model answer and the
current text (code or markdown) plus the error that prompted the repair; returns the
parsed blocks (malformed ones reported, never raised) and an `EditOutcome` with the
new text, one result per block and a model-readable report naming each failed
block; pure functions on strings, no I/O."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.edit import (
    BlockResult,
    EditBlock,
    EditOutcome,
    MalformedBlock,
    ParsedEdits,
)

HEAD_LINE = "<<<<<<< SEARCH"
DIVIDER_LINE = "======="
TAIL_LINE = ">>>>>>> REPLACE"
ELLIPSIS_LINE = "..."
SIMILARITY_THRESHOLD = 0.6
"""Minimum difflib ratio for a "did you mean" excerpt."""
EXCERPT_CONTEXT = 5
"""Lines shown around a similar window whose first or last line differs."""

_HEAD = re.compile(r"^<{5,9} ?SEARCH>?$")
_DIVIDER = re.compile(r"^={5,9}$")
_TAIL = re.compile(r"^>{5,9} ?REPLACE$")
_FENCE_OPEN = re.compile(r"^(`{3,}|~{3,})\s*[\w+-]*$")


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
    lines = _split(text)
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
            EditBlock(search=_join(search), replace=_join(replace), index=index)
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
    doc = _Document.of(source)
    results = [_apply_block(doc, block) for block in blocks]
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


@dataclass
class _Document:
    """The text being edited, as lines without their endings."""

    lines: list[str]
    eol: str
    final_newline: bool
    changed: bool = False

    @classmethod
    def of(cls, text: str) -> _Document:
        eol = "\r\n" if "\r\n" in text else "\n"
        return cls(lines=_split(text), eol=eol, final_newline=text.endswith("\n"))

    def text(self) -> str:
        body = self.eol.join(self.lines)
        return body + self.eol if self.lines and self.final_newline else body


@dataclass(frozen=True)
class _Match:
    start: int
    stop: int
    lines: tuple[str, ...]
    how: str


def _apply_block(doc: _Document, block: EditBlock) -> BlockResult:
    search, replace = _split(block.search), _split(block.replace)
    if _blank(search):
        return _append(doc, block.index, replace)
    matches = _find(doc.lines, search, replace)
    if len(matches) > 1:
        return _ambiguous(block.index, matches, "SEARCH text")
    if matches:
        new = _splice(doc.lines, matches[0])
        detail = f"{matches[0].how} at line {matches[0].start + 1}"
        return _commit(doc, block.index, new, detail)
    if any(line.strip() == ELLIPSIS_LINE for line in search):
        return _apply_elided(doc, block.index, search, replace)
    present = _find(doc.lines, replace, replace) if not _blank(replace) else []
    if present:
        detail = (
            "SEARCH text not found, but the REPLACE text is already at line "
            f"{present[0].start + 1}"
        )
        return BlockResult(index=block.index, status="already_applied", detail=detail)
    return BlockResult(
        index=block.index, status="no_match", detail="SEARCH text not found"
    )


def _append(doc: _Document, index: int, replace: list[str]) -> BlockResult:
    if _blank(replace):
        detail = "both SEARCH and REPLACE are empty"
        return BlockResult(index=index, status="rejected", detail=detail)
    present = _find(doc.lines, replace, replace)
    if present:
        detail = f"the text to append is already at line {present[0].start + 1}"
        return BlockResult(index=index, status="already_applied", detail=detail)
    result = _commit(doc, index, doc.lines + replace, "appended at the end")
    doc.final_newline = doc.final_newline or result.status == "applied"
    return result


def _apply_elided(
    doc: _Document, index: int, search: list[str], replace: list[str]
) -> BlockResult:
    search_pieces, replace_pieces = _pieces(search), _pieces(replace)
    if len(search_pieces) != len(replace_pieces):
        detail = (
            f"SEARCH has {len(search_pieces) - 1} '...' lines but REPLACE has "
            f"{len(replace_pieces) - 1}; they must pair up"
        )
        return BlockResult(index=index, status="no_match", detail=detail)
    lines = list(doc.lines)
    pairs = zip(search_pieces, replace_pieces, strict=True)
    for number, (piece, replacement) in enumerate(pairs, start=1):
        if _blank(piece):
            if _blank(replacement):
                continue
            detail = f"part {number} of REPLACE has no SEARCH text to anchor it"
            return BlockResult(index=index, status="no_match", detail=detail)
        matches = _find(lines, piece, replacement)
        if len(matches) > 1:
            return _ambiguous(index, matches, f"part {number} of the elided SEARCH")
        if not matches:
            detail = f"part {number} of the elided SEARCH text not found"
            return BlockResult(index=index, status="no_match", detail=detail)
        lines = _splice(lines, matches[0])
    detail = f"applied in elision mode ({len(search_pieces)} parts)"
    return _commit(doc, index, lines, detail)


def _commit(doc: _Document, index: int, new: list[str], detail: str) -> BlockResult:
    if _blank(new) and not _blank(doc.lines):
        detail = "it would leave the file empty"
        return BlockResult(index=index, status="rejected", detail=detail)
    doc.changed = doc.changed or new != doc.lines
    doc.lines = new
    return BlockResult(index=index, status="applied", detail=detail)


def _ambiguous(index: int, matches: list[_Match], what: str) -> BlockResult:
    lines = ", ".join(str(match.start + 1) for match in matches[:5])
    more = ", ..." if len(matches) > 5 else ""
    detail = f"{what} matches {len(matches)} places (lines {lines}{more})"
    return BlockResult(index=index, status="ambiguous", detail=detail)


def _find(lines: list[str], search: list[str], replace: list[str]) -> list[_Match]:
    """Every match of the first variant of `search` that matches at all."""
    for variant_search, variant_replace in _variants(search, replace):
        matches = _exact(lines, variant_search, variant_replace)
        matches = matches or _tolerant(lines, variant_search, variant_replace)
        if matches:
            return matches
    return []


def _variants(
    search: list[str], replace: list[str]
) -> list[tuple[list[str], list[str]]]:
    variants = [(search, replace)]
    trimmed = _trim_blank_ends(search, replace)
    if trimmed[0] != search:
        variants.append(trimmed)
    if _fenced(search) and _fenced(replace):
        variants.append((search[1:-1], replace[1:-1]))
    return variants


def _trim_blank_ends(
    search: list[str], replace: list[str]
) -> tuple[list[str], list[str]]:
    """Drop blank lines at the ends of SEARCH, and at the same ends of REPLACE."""
    start, stop = 0, len(search)
    while start < stop and not search[start].strip():
        start += 1
    while stop > start and not search[stop - 1].strip():
        stop -= 1
    head, tail = 0, len(replace)
    if start:
        while head < tail and not replace[head].strip():
            head += 1
    if stop < len(search):
        while tail > head and not replace[tail - 1].strip():
            tail -= 1
    return search[start:stop], replace[head:tail]


def _exact(lines: list[str], search: list[str], replace: list[str]) -> list[_Match]:
    size = len(search)
    return [
        _Match(start, start + size, tuple(replace), "exact match")
        for start in range(len(lines) - size + 1)
        if lines[start] == search[0] and lines[start : start + size] == search
    ]


def _tolerant(lines: list[str], search: list[str], replace: list[str]) -> list[_Match]:
    """Matches where every line differs only by one shared extra indentation."""
    common = _common_indent(search + replace)
    search = [_outdent(line, common) for line in search]
    replace = [_outdent(line, common) for line in replace]
    size = len(search)
    matches = []
    for start in range(len(lines) - size + 1):
        prefix = _window_prefix(lines[start : start + size], search)
        if prefix is None:
            continue
        new = tuple(prefix + line if line.strip() else "" for line in replace)
        how = f"indentation-tolerant match (re-indented by {prefix!r})"
        matches.append(_Match(start, start + size, new, how))
    return matches


def _window_prefix(window: list[str], search: list[str]) -> str | None:
    """The indentation every non-blank window line adds to SEARCH, if shared."""
    prefix: str | None = None
    for have, want in zip(window, search, strict=True):
        have, want = have.rstrip(), want.rstrip()
        if not want:
            if have:
                return None
            continue
        lead = have[: len(have) - len(want)]
        if not have.endswith(want) or lead.strip():
            return None
        if prefix is None:
            prefix = lead
        elif lead != prefix:
            return None
    return prefix


def _common_indent(lines: list[str]) -> str:
    indents = [line[: len(line) - len(line.lstrip())] for line in lines if line.strip()]
    if not indents:
        return ""
    common = indents[0]
    for indent in indents[1:]:
        while not indent.startswith(common):
            common = common[:-1]
    return common


def _outdent(line: str, common: str) -> str:
    return line[len(common) :] if line.startswith(common) else line.lstrip()


def _pieces(lines: list[str]) -> list[list[str]]:
    pieces: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == ELLIPSIS_LINE:
            pieces.append([])
        else:
            pieces[-1].append(line)
    return pieces


def _splice(lines: list[str], match: _Match) -> list[str]:
    return lines[: match.start] + list(match.lines) + lines[match.stop :]


def _fenced(lines: list[str]) -> bool:
    return (
        len(lines) >= 2
        and bool(_FENCE_OPEN.match(lines[0].strip()))
        and lines[-1].strip() in ("```", "~~~")
    )


def _blank(lines: list[str]) -> bool:
    return not any(line.strip() for line in lines)


def _split(text: str) -> list[str]:
    """Lines of a text without their endings; a final newline adds no line."""
    if not text:
        return []
    body = text[:-1] if text.endswith("\n") else text
    return [line.removesuffix("\r") for line in body.split("\n")]


def _join(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


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
    search = [line for line in _split(block.search) if line.strip() != ELLIPSIS_LINE]
    if result.status == "no_match":
        parts.append(_did_you_mean(lines, _trim_blank_ends(search, [])[0]))
    replace = _split(block.replace)
    present = _find(lines, replace, replace) if not _blank(replace) else []
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

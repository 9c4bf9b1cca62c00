"""Matching engine of the block editor: finds where a SEARCH text stands in a
document (exact, indentation-tolerant, trimmed, or elided with `...`) and splices in
the replacement; pure functions on lists of lines, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass

from schemas.edit import BlockResult, EditBlock

ELLIPSIS_LINE = "..."
FENCE_OPEN = re.compile(r"^(`{3,}|~{3,})\s*[\w+-]*$")


@dataclass
class Document:
    """The text being edited, as lines without their endings."""

    lines: list[str]
    eol: str
    final_newline: bool
    changed: bool = False

    @classmethod
    def of(cls, text: str) -> Document:
        eol = "\r\n" if "\r\n" in text else "\n"
        return cls(lines=split_lines(text), eol=eol, final_newline=text.endswith("\n"))

    def text(self) -> str:
        body = self.eol.join(self.lines)
        return body + self.eol if self.lines and self.final_newline else body


@dataclass(frozen=True)
class _Match:
    start: int
    stop: int
    lines: tuple[str, ...]
    how: str


def apply_block(doc: Document, block: EditBlock) -> BlockResult:
    search, replace = split_lines(block.search), split_lines(block.replace)
    if is_blank(search):
        return _append(doc, block.index, replace)
    matches = find_matches(doc.lines, search, replace)
    if len(matches) > 1:
        return _ambiguous(block.index, matches, "SEARCH text")
    if matches:
        new = _splice(doc.lines, matches[0])
        detail = f"{matches[0].how} at line {matches[0].start + 1}"
        return _commit(doc, block.index, new, detail)
    if any(line.strip() == ELLIPSIS_LINE for line in search):
        return _apply_elided(doc, block.index, search, replace)
    present = find_matches(doc.lines, replace, replace) if not is_blank(replace) else []
    if present:
        detail = (
            "SEARCH text not found, but the REPLACE text is already at line "
            f"{present[0].start + 1}"
        )
        return BlockResult(index=block.index, status="already_applied", detail=detail)
    return BlockResult(
        index=block.index, status="no_match", detail="SEARCH text not found"
    )


def _append(doc: Document, index: int, replace: list[str]) -> BlockResult:
    if is_blank(replace):
        detail = "both SEARCH and REPLACE are empty"
        return BlockResult(index=index, status="rejected", detail=detail)
    present = find_matches(doc.lines, replace, replace)
    if present:
        detail = f"the text to append is already at line {present[0].start + 1}"
        return BlockResult(index=index, status="already_applied", detail=detail)
    result = _commit(doc, index, doc.lines + replace, "appended at the end")
    doc.final_newline = doc.final_newline or result.status == "applied"
    return result


def _apply_elided(
    doc: Document, index: int, search: list[str], replace: list[str]
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
        if is_blank(piece):
            if is_blank(replacement):
                continue
            detail = f"part {number} of REPLACE has no SEARCH text to anchor it"
            return BlockResult(index=index, status="no_match", detail=detail)
        matches = find_matches(lines, piece, replacement)
        if len(matches) > 1:
            return _ambiguous(index, matches, f"part {number} of the elided SEARCH")
        if not matches:
            detail = f"part {number} of the elided SEARCH text not found"
            return BlockResult(index=index, status="no_match", detail=detail)
        lines = _splice(lines, matches[0])
    detail = f"applied in elision mode ({len(search_pieces)} parts)"
    return _commit(doc, index, lines, detail)


def _commit(doc: Document, index: int, new: list[str], detail: str) -> BlockResult:
    if is_blank(new) and not is_blank(doc.lines):
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


def find_matches(
    lines: list[str], search: list[str], replace: list[str]
) -> list[_Match]:
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
    trimmed = trim_blank_ends(search, replace)
    if trimmed[0] != search:
        variants.append(trimmed)
    if _fenced(search) and _fenced(replace):
        variants.append((search[1:-1], replace[1:-1]))
    return variants


def trim_blank_ends(
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
        and bool(FENCE_OPEN.match(lines[0].strip()))
        and lines[-1].strip() in ("```", "~~~")
    )


def is_blank(lines: list[str]) -> bool:
    return not any(line.strip() for line in lines)


def split_lines(text: str) -> list[str]:
    """Lines of a text without their endings; a final newline adds no line."""
    if not text:
        return []
    body = text[:-1] if text.endswith("\n") else text
    return [line.removesuffix("\r") for line in body.split("\n")]


def join_lines(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)

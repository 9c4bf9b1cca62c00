"""s07 policy markers: takes a policy's markdown (optionally wrapped in a code fence)
and returns a `ParsedPolicy` cut along its HTML-comment markers (global rules plus
one `ToolPolicy` per tool section, with best-effort fields read from headed lists,
and marker problems as sentences); re-serialises a parsed policy whole or filtered
to the tools of a trajectory; pure functions, no I/O."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from schemas.base import TOOL_NAME_MAX_LENGTH, TOOL_NAME_PATTERN
from schemas.policy import ParsedPolicy, ToolPolicy

POLICY_START = "<!-- POLICY_START -->"
GLOBAL_RULES_END = "<!-- GLOBAL_RULES_END -->"
POLICY_END = "<!-- POLICY_END -->"

FIELD_HEADINGS = {
    "purpose": "Purpose",
    "preconditions": "Preconditions",
    "input_validation": "Input validation",
    "permission_outcomes": "Permission outcomes",
    "effects": "Effects",
    "dependencies": "Dependencies",
}
"""The headings a tool section uses for its fields (`Heading:` then a list)."""

_ALIASES = {
    "precondition": "preconditions",
    "prerequisites": "preconditions",
    "input validations": "input_validation",
    "input checks": "input_validation",
    "permission outcome": "permission_outcomes",
    "permissions": "permission_outcomes",
    "outcomes": "permission_outcomes",
    "effect": "effects",
    "side effects": "effects",
    "dependency": "dependencies",
    "temporal dependencies": "dependencies",
    "logical dependencies": "dependencies",
    "temporal and logical dependencies": "dependencies",
    "temporal/logical dependencies": "dependencies",
} | {heading.lower(): field for field, heading in FIELD_HEADINGS.items()}

_MARKER = re.compile(
    r"<!--\s*(?P<kind>POLICY_START|GLOBAL_RULES_END|POLICY_END|TOOL_END|TOOL)\b"
    r"\s*(?::\s*(?P<name>[^\n>]*?))?\s*-->",
    re.IGNORECASE,
)
_SINGLETONS = {
    "POLICY_START": (POLICY_START, "it must open the policy"),
    "GLOBAL_RULES_END": (
        GLOBAL_RULES_END,
        "put it after the global rules, before the first tool section",
    ),
    "POLICY_END": (POLICY_END, "put it after the last tool section"),
}
_OUTER_FENCE = re.compile(
    r"^\s*(?P<fence>`{3,}|~{3,})[^\n`]*\n(?P<body>.*?)\n\s*(?P=fence)\s*$", re.DOTALL
)
_HEADER = re.compile(r"^\s*(?:[-*+]\s+)?(?P<hashes>#{1,6}\s+)?(?P<body>.+?)\s*$")
_BULLET = re.compile(r"^(?P<indent>\s*)(?:[-*+]|\d+[.)])\s+(?P<item>.*?)\s*$")
_PARENTHESIS = re.compile(r"\([^)]*\)")


def tool_start(name: str) -> str:
    """The marker that opens a tool's section."""
    return f"<!-- TOOL: {name} -->"


def tool_end(name: str) -> str:
    """The marker that closes a tool's section."""
    return f"<!-- TOOL_END: {name} -->"


def strip_fence(text: str) -> str:
    """Remove one markdown code fence wrapping the whole text, if there is one."""
    match = _OUTER_FENCE.match(text)
    return match["body"] if match else text


def parse_policy(text: str) -> ParsedPolicy:
    """Cut a policy along its markers.

    The global rules lie between POLICY_START (or the start of the text) and
    GLOBAL_RULES_END (or the first tool marker, POLICY_END, or the end). Each
    `<!-- TOOL: x -->` opens a section that its TOOL_END, the next TOOL marker,
    POLICY_END or the end of the text closes. Missing, repeated, misplaced or
    mismatched markers, invalid or repeated tool names, and text between
    sections (which filtering would drop) are reported as problems; the first
    section of a repeated tool is kept.

    Args:
        text: The policy markdown.

    Returns:
        The global rules, the tool sections by name, and the marker problems.
    """
    text = strip_fence(text)
    markers = [_Marker.of(match) for match in _MARKER.finditer(text)]
    problems = _order_problems(markers)
    start = next((m for m in markers if m.kind == "POLICY_START"), None)
    rules_from = start.end if start else 0
    later = [m for m in markers if m.start >= rules_from and m.kind != "POLICY_START"]
    stop = next((m for m in later if m.kind != "GLOBAL_RULES_END"), None)
    rules_end = next((m for m in later if m.kind == "GLOBAL_RULES_END"), None)
    if rules_end and (stop is None or rules_end.start < stop.start):
        global_rules, body_from = text[rules_from : rules_end.start], rules_end.end
    else:
        rules_to = stop.start if stop else len(text)
        global_rules, body_from = text[rules_from:rules_to], rules_to
    sections = _Sections(text, body_from)
    for marker in markers:
        if marker.start >= body_from:
            sections.see(marker)
    sections.finish()
    tools = {name: _tool_policy(name, body) for name, body in sections.found}
    problems += sections.problems
    return ParsedPolicy(
        global_rules=global_rules.strip(), tools=tools, problems=tuple(problems)
    )


def policy_export(parsed: ParsedPolicy) -> str:
    """Serialise a parsed policy with its markers; `parse_policy` reads it back.

    Args:
        parsed: The policy.

    Returns:
        The markdown: global rules, then every tool section in order.
    """
    return _render(parsed.global_rules, parsed.tools.values())


def filter_policy(parsed: ParsedPolicy, trajectory: Sequence[str]) -> str:
    """The global rules plus the sections of the tools a trajectory calls.

    Sections follow the trajectory's first-call order, each once. A name with no
    section of the same spelling matches one that differs only in case; a name
    with no section at all is skipped (`check_policy` reports missing sections).

    Args:
        parsed: The policy.
        trajectory: Tool names in call order; repeats are allowed.

    Returns:
        The filtered policy markdown, with markers.
    """
    by_lower = {name.lower(): name for name in parsed.tools}
    chosen: dict[str, ToolPolicy] = {}
    for step in trajectory:
        name = step if step in parsed.tools else by_lower.get(step.lower())
        if name is not None and name not in chosen:
            chosen[name] = parsed.tools[name]
    return _render(parsed.global_rules, chosen.values())


def _render(global_rules: str, sections: Iterable[ToolPolicy]) -> str:
    lines = [POLICY_START, global_rules, GLOBAL_RULES_END]
    for section in sections:
        lines += ["", tool_start(section.name), section.text, tool_end(section.name)]
    lines += ["", POLICY_END]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Marker:
    kind: str
    name: str
    start: int
    end: int

    @classmethod
    def of(cls, match: re.Match[str]) -> _Marker:
        name = (match["name"] or "").strip()
        return cls(match["kind"].upper(), name, match.start(), match.end())

    @property
    def label(self) -> str:
        return tool_start(self.name) if self.kind == "TOOL" else tool_end(self.name)


def _order_problems(markers: list[_Marker]) -> list[str]:
    problems = []
    counts = Counter(marker.kind for marker in markers)
    for kind, (marker, where) in _SINGLETONS.items():
        if not counts[kind]:
            problems.append(f"The policy lacks `{marker}`; {where}.")
        elif counts[kind] > 1:
            problems.append(
                f"The policy has {counts[kind]} `{marker}` markers; keep exactly one."
            )
    if counts["POLICY_START"] and markers[0].kind != "POLICY_START":
        problems.append(f"`{POLICY_START}` must come before every other marker.")
    tools = [m for m in markers if m.kind in ("TOOL", "TOOL_END")]
    rules_end = next((m for m in markers if m.kind == "GLOBAL_RULES_END"), None)
    if rules_end and tools and tools[0].start < rules_end.start:
        problems.append(
            f"`{GLOBAL_RULES_END}` must come before the first tool section, but "
            f"`{tools[0].label}` comes first."
        )
    policy_end = next((m for m in markers if m.kind == "POLICY_END"), None)
    if policy_end and tools and tools[-1].start > policy_end.start:
        problems.append(
            f"`{POLICY_END}` must come after the last tool section, but "
            f"`{tools[-1].label}` follows it."
        )
    return problems


class _Sections:
    """Pairs TOOL and TOOL_END markers, recording what does not pair."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.found: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self._open: _Marker | None = None
        self._free_from = start
        self._names: Counter[str] = Counter()

    def see(self, marker: _Marker) -> None:
        if marker.kind == "TOOL":
            self._close(marker.start, f"before `{marker.label}`")
            self._check_outside(marker.start)
            self._open = marker
        elif marker.kind == "TOOL_END":
            if self._open is None:
                self.problems.append(
                    f"`{marker.label}` closes no section; add "
                    f"`{tool_start(marker.name)}` before the section or remove it."
                )
            elif marker.name != self._open.name:
                self.problems.append(
                    f"`{marker.label}` closes the section of '{self._open.name}'; "
                    "the names must match."
                )
            self._close(marker.start, "")
            self._free_from = marker.end
        elif marker.kind == "POLICY_END":
            self._close(marker.start, f"before `{POLICY_END}`")
            self._check_outside(marker.start)
            self._free_from = marker.end

    def finish(self) -> None:
        self._close(len(self.text), "before the end of the policy")
        for name, count in self._names.items():
            if count > 1:
                self.problems.append(
                    f"Tool '{name}' has {count} sections; merge them into one."
                )

    def _close(self, at: int, where: str) -> None:
        marker, self._open = self._open, None
        if marker is None:
            return
        self._free_from = at
        if where:
            self.problems.append(
                f"Tool section '{marker.name}' is not closed; add "
                f"`{tool_end(marker.name)}` {where}."
            )
        if not _is_tool_name(marker.name):
            self.problems.append(
                f"`{marker.label}` does not hold a tool name; use the exact function "
                "name."
            )
            return
        self._names[marker.name] += 1
        if self._names[marker.name] == 1:
            self.found.append((marker.name, self.text[marker.end : at].strip()))

    def _check_outside(self, at: int) -> None:
        stray = " ".join(self.text[self._free_from : at].split())
        if stray:
            excerpt = stray if len(stray) <= 60 else stray[:57] + "..."
            self.problems.append(
                f"Text outside every section would be dropped: '{excerpt}'; move it "
                "into the global rules or a tool section."
            )


def _tool_policy(name: str, text: str) -> ToolPolicy:
    purpose: list[str] = []
    lists: dict[str, list[str]] = {
        field: [] for field in FIELD_HEADINGS if field != "purpose"
    }
    field: str | None = None
    indent: int | None = None
    after_blank = False
    for line in text.split("\n"):
        header = _field_header(line)
        if header is not None:
            field, rest = header
            target = purpose if field == "purpose" else lists[field]
            if rest:
                target.append(rest)
            indent, after_blank = None, False
            continue
        if field is None:
            continue
        if not line.strip():
            after_blank = True
            continue
        bullet = _BULLET.match(line)
        if line.lstrip().startswith("#") or (after_blank and not bullet):
            field = None
            continue
        if field == "purpose":
            if bullet:
                field = None
            else:
                purpose.append(line.strip())
            continue
        items = lists[field]
        if bullet is None:
            _extend(items, line.strip(), " ")
        elif indent is None or len(bullet["indent"]) <= indent or not items:
            indent = len(bullet["indent"]) if indent is None else indent
            items.append(bullet["item"])
        else:
            _extend(items, bullet["item"], " " if items[-1].endswith(":") else "; ")
        after_blank = False
    fields = {field: tuple(items) for field, items in lists.items()}
    return ToolPolicy(name=name, text=text, purpose=" ".join(purpose), **fields)


def _field_header(line: str) -> tuple[str, str] | None:
    """(field, text after the colon) when the line heads a field list."""
    match = _HEADER.match(line)
    if match is None:
        return None
    body = match["body"]
    emphasised = "**" in body or "__" in body
    label, colon, rest = body.replace("**", "").replace("__", "").partition(":")
    field = _ALIASES.get(_PARENTHESIS.sub("", label).strip().lower())
    if field is None or not (colon or match["hashes"] or emphasised):
        return None
    return field, rest.strip()


def _extend(items: list[str], text: str, joiner: str) -> None:
    if items:
        items[-1] = f"{items[-1]}{joiner}{text}"
    else:
        items.append(text)


def _is_tool_name(name: str) -> bool:
    return bool(TOOL_NAME_PATTERN.match(name)) and len(name) <= TOOL_NAME_MAX_LENGTH

"""Parameter value domains stated in a policy (used by s08 and later task
synthesis): takes policy markdown and returns, per scope (the global rules or a
tool section), the enumerations, numeric ranges, array choices and booleans its
sentences give for parameters, as typed `ValueDomain` models; best effort by
regular expression, pure, no I/O."""

from __future__ import annotations

import re

from schemas.policy import (
    ArrayChoiceDomain,
    BooleanDomain,
    EnumDomain,
    RangeDomain,
    ValueDomain,
)
from tasks.core.policy import parse_policy

GLOBAL_SCOPE = "_global"
"""The scope key of domains stated in the global rules."""

_PARAM = r"(?<![\w`])`?(?P<param>[A-Za-z_][A-Za-z0-9_]*)`?"
_NUMBER = r"-?\d+(?:\.\d+)?"
_SET = re.compile(_PARAM + r"\s*(?:∈|\bin\b)\s*\{(?P<values>[^{}\n]+)\}", re.I)
_ALTERNATIVES = re.compile(_PARAM + r"\s*:\s*\((?P<values>[^()|\n]+(?:\|[^()|\n]+)+)\)")
_RANGE = re.compile(
    _PARAM + r"\s*(?:(?P<type>\bint|\binteger|\bfloat|\bnumber)\s+)?"
    rf"(?:∈|\bin\b|\bwithin\b)\s*\[\s*(?P<low>{_NUMBER})\s*,\s*(?P<high>{_NUMBER})\s*\]",
    re.I,
)
_ARRAY = re.compile(
    _PARAM + r"\s+must\s+be\s+an?\s+array\s+of\s+(?P<low>\d+)\s+to\s+(?P<high>\d+)"
    r"\b[^\n:]*?\bfrom\s*:\s*(?P<values>[^\n]+)",
    re.I,
)
_BOOLEAN = re.compile(_PARAM + r"(?:\s*:|\s+is)\s*(?:an?\s+)?bool(?:ean)?\b", re.I)
_QUOTES = "`'\" "
_LIST_SEPARATOR = re.compile(r"\s*,\s*(?:(?:and|or)\s+)?|\s+(?:and|or)\s+")


def extract_value_domains(text: str) -> dict[str, dict[str, ValueDomain]]:
    """The value domains a policy states for parameters, by scope.

    Recognised forms (parameter names may be backticked):
    `p ∈ {a, b}` and `p in {a, b}` (enum); `p: (a|b|c)` (enum);
    `p in [1, 5]`, `p within [1, 5]`, `p ∈ [1, 5]` and `p int|float in [0, 1]`
    (range, integer unless a bound has a decimal point or the type says float);
    `p must be an array of 1 to 3 ... from: a, b, c` (array choice);
    `p is boolean` and `p: boolean` (boolean). In each scope the first statement
    about a parameter wins.

    Args:
        text: The policy markdown, with or without markers (without them, all of
            it counts as global rules).

    Returns:
        Scope (`GLOBAL_SCOPE` or a tool name) -> parameter -> domain; scopes with
        no domain are left out.
    """
    parsed = parse_policy(text)
    scopes = {GLOBAL_SCOPE: parsed.global_rules}
    scopes |= {name: section.text for name, section in parsed.tools.items()}
    domains = {scope: value_domains_in(body) for scope, body in scopes.items()}
    return {scope: found for scope, found in domains.items() if found}


def value_domains_in(text: str) -> dict[str, ValueDomain]:
    """The value domains stated in one piece of text; see `extract_value_domains`.

    Args:
        text: Any policy text.

    Returns:
        Parameter -> domain, in order of first statement.
    """
    found: list[tuple[int, str, ValueDomain]] = []
    for match in _SET.finditer(text):
        _add_enum(found, match, match["values"].split(","))
    for match in _ALTERNATIVES.finditer(text):
        _add_enum(found, match, match["values"].split("|"))
    for match in _RANGE.finditer(text):
        domain = _range(match)
        if domain is not None:
            found.append((match.start(), match["param"], domain))
    for match in _ARRAY.finditer(text):
        low, high = int(match["low"]), int(match["high"])
        choices = _values(_LIST_SEPARATOR.split(match["values"].strip().rstrip(".")))
        if choices and low <= high:
            domain = ArrayChoiceDomain(min_items=low, max_items=high, choices=choices)
            found.append((match.start(), match["param"], domain))
    for match in _BOOLEAN.finditer(text):
        found.append((match.start(), match["param"], BooleanDomain()))
    domains: dict[str, ValueDomain] = {}
    for _, param, domain in sorted(found, key=lambda item: item[0]):
        domains.setdefault(param, domain)
    return domains


def _add_enum(
    found: list[tuple[int, str, ValueDomain]], match: re.Match[str], raw: list[str]
) -> None:
    values = _values(raw)
    if values:
        found.append((match.start(), match["param"], EnumDomain(values=values)))


def _range(match: re.Match[str]) -> RangeDomain | None:
    low_text, high_text = match["low"], match["high"]
    stated = (match["type"] or "").lower()
    if stated:
        integer = stated in ("int", "integer")
    else:
        integer = "." not in low_text and "." not in high_text
    low, high = float(low_text), float(high_text)
    if integer:
        low, high = int(low), int(high)
    if low > high:
        return None
    return RangeDomain(minimum=low, maximum=high, integer=integer)


def _values(raw: list[str]) -> tuple[str, ...]:
    values = (value.strip().strip(_QUOTES) for value in raw)
    return tuple(dict.fromkeys(value for value in values if value))

"""s07 policy checks: takes a `ParsedPolicy`, the server's tool names, its schema
(table -> columns), the core entity and the other allowed terms (parameter names,
enum values); returns one model-readable sentence per problem (marker problems,
missing or unknown tool sections, references outside the closed world, auth
tokens, real-clock time), sent back to the model as the re-ask; no side effects."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

from schemas.policy import ParsedPolicy
from tasks.core.policy import GLOBAL_RULES_END, POLICY_END, tool_end, tool_start

COLUMN_SUFFIXES = (
    "_id",
    "_ids",
    "_at",
    "_on",
    "_date",
    "_time",
    "_status",
    "_type",
    "_count",
    "_code",
    "_number",
    "_amount",
    "_flag",
)
"""Endings that make a bare snake_case word read as a column name."""
COLUMN_PREFIXES = ("is_", "has_")
"""Beginnings that make a bare snake_case word read as a flag column."""
LITERALS = frozenset({"true", "false", "null", "none"})

_QUALIFIED = re.compile(r"(?<![\w.])([A-Z][A-Za-z0-9]*)\.([a-z_][a-z0-9_]*)\b")
_BACKTICKED = re.compile(r"`([^`\n]+)`")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
_TOKEN = re.compile(
    r"\b(?:auth|authentication|authorization|access|session|bearer|login|security)"
    r"[ _-]?tokens?\b|\bapi[ _-]?keys?\b"
    r"|\b(?:issues?|issued|returns?|returned|generates?|generated)\s+"
    r"(?:an?|the)\s+(?:\w+\s+)?tokens?\b"
    r"|\b\w+_tokens?\b|\btokens?_\w+\b",
    re.IGNORECASE,
)
_REAL_CLOCK = re.compile(
    r"\b(?:current\s+)?system\s+(?:time|clock|date)\b"
    r"|\breal[- ]world\s+(?:time|date|clock)\b|\breal[- ]time\s+clock\b"
    r"|\bwall[- ]clock\b|\bactual\s+current\s+(?:date|time)\b"
    r"|\bnow\(\)|\bdatetime\.(?:now|utcnow|today)\b|\bdate\.today\b"
    r"|\btime\.time\(\)",
    re.IGNORECASE,
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def check_policy(
    parsed: ParsedPolicy,
    *,
    tool_names: Iterable[str],
    tables: Mapping[str, Collection[str]],
    core_entity: str,
    known_terms: Collection[str] = (),
) -> list[str]:
    """Problems with a policy, as re-ask sentences.

    Besides the parser's marker problems, every tool must have a section and no
    section may name an unknown tool. The policy lives in a closed world: a
    `Table.column` reference must exist in the schema; a backticked identifier
    with an underscore or a capital, and a bare snake_case word that reads as a
    column (see `COLUMN_SUFFIXES`, `COLUMN_PREFIXES`), must be a column, table,
    tool or known term. Authorization binds the session and issues no token, so
    token wording is a problem; so is any reference to the system clock instead
    of the simulation time. The global rules must be present and name the core
    entity, the user the assistant serves.

    Args:
        parsed: The parsed policy.
        tool_names: The server's tools.
        tables: Each table's columns.
        core_entity: The entity of the user, e.g. "Patient".
        known_terms: Other allowed identifiers: parameter names, enum values.

    Returns:
        Sentences naming the section and the offending marker, tool or term;
        empty when the policy is usable.
    """
    tools = list(dict.fromkeys(tool_names))
    terms = _Terms(tables, core_entity, [*tools, *known_terms])
    problems = list(parsed.problems)
    problems += _coverage_problems(parsed, tools)
    problems += _global_rule_problems(parsed.global_rules, core_entity)
    scopes = [("Global rules", parsed.global_rules)]
    scopes += [(f"Tool section '{name}'", t.text) for name, t in parsed.tools.items()]
    for where, text in scopes:
        found = _closed_world(text, terms) | _tokens(text, terms) | _clock(text)
        problems += [f"{where}: {sentence}" for sentence in found.values()]
    return problems


class _Terms:
    """The closed world's vocabulary, compared case-insensitively."""

    def __init__(
        self,
        tables: Mapping[str, Collection[str]],
        core_entity: str,
        others: Iterable[str],
    ) -> None:
        self.tables = {name.lower(): name for name in tables}
        self.columns = {
            name.lower(): {column.lower() for column in columns}
            for name, columns in tables.items()
        }
        self.listing = {
            name.lower(): ", ".join(sorted(columns)) for name, columns in tables.items()
        }
        every_column = {
            column for columns in self.columns.values() for column in columns
        }
        self.allowed = (
            every_column
            | set(self.tables)
            | {core_entity.lower()}
            | {term.lower() for term in others}
            | LITERALS
        )

    def table_list(self) -> str:
        return ", ".join(sorted(self.tables.values()))


def _coverage_problems(parsed: ParsedPolicy, tools: list[str]) -> list[str]:
    problems = [
        f"The policy has no section for tool '{name}'; add `{tool_start(name)}` … "
        f"`{tool_end(name)}` between `{GLOBAL_RULES_END}` and `{POLICY_END}`."
        for name in tools
        if name not in parsed.tools
    ]
    known = ", ".join(tools)
    problems += [
        f"Tool section '{name}' names no tool of this server; rename it to one of "
        f"{known}, or remove it."
        for name in parsed.tools
        if name not in tools
    ]
    return problems


def _global_rule_problems(global_rules: str, core_entity: str) -> list[str]:
    if not global_rules.strip():
        return [
            "The global rules are empty; state who the user is, the simulation "
            "time and the rules every tool shares before `"
            f"{GLOBAL_RULES_END}`."
        ]
    words = _CAMEL_BOUNDARY.sub(" ", core_entity).lower()
    spellings = {core_entity.lower(), words, words.replace(" ", "_")}
    if any(spelling in global_rules.lower() for spelling in spellings):
        return []
    return [
        f"Global rules never name the user's entity '{core_entity}'; state that the "
        f"user is a {words} and that authorization binds the session to that {words}."
    ]


def _closed_world(text: str, terms: _Terms) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _QUALIFIED.finditer(text):
        table, column = match.groups()
        key = table.lower()
        if key not in terms.tables:
            found.setdefault(
                match[0],
                f"`{match[0]}` refers to table '{table}', which the schema lacks; "
                f"the tables are {terms.table_list()}.",
            )
        elif column.lower() not in terms.columns[key]:
            found.setdefault(
                match[0],
                f"`{match[0]}` refers to column '{column}', which table "
                f"'{terms.tables[key]}' lacks; its columns are {terms.listing[key]}.",
            )
    text = _QUALIFIED.sub(" ", text)
    for match in _BACKTICKED.finditer(text):
        term = match[1].strip()
        looks_named = "_" in term or term[:1].isupper()
        if _IDENTIFIER.fullmatch(term) and looks_named:
            _check_term(term, terms, found)
    for match in _SNAKE.finditer(_BACKTICKED.sub(" ", text)):
        term = match[0]
        if term.endswith(COLUMN_SUFFIXES) or term.startswith(COLUMN_PREFIXES):
            _check_term(term, terms, found)
    return found


def _check_term(term: str, terms: _Terms, found: dict[str, str]) -> None:
    if term.lower() in terms.allowed:
        return
    found.setdefault(
        term,
        f"`{term}` is not a column or table of the schema, nor a tool, parameter or "
        "enum value; the policy may only use what the schema has, so remove the rule "
        "or use an existing column.",
    )


def _tokens(text: str, terms: _Terms) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _TOKEN.finditer(text):
        phrase = match[0]
        if phrase.lower() in terms.allowed:
            continue
        found.setdefault(
            phrase.lower(),
            f"'{phrase}' implies an authorization token, but authorization only "
            "binds the session to the user and issues no token; drop the token and "
            "say that later calls act for the authorized user.",
        )
    return found


def _clock(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for match in _REAL_CLOCK.finditer(text):
        phrase = match[0]
        found.setdefault(
            phrase.lower(),
            f"'{phrase}' points at the real clock; every time rule must use the "
            "simulation time stated in the global rules.",
        )
    return found

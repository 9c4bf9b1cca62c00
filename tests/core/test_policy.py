"""Tests for the s07 policy markers: parsing, export, filtering, checks and value
domains."""

import pytest

from schemas.policy import (
    ArrayChoiceDomain,
    BooleanDomain,
    EnumDomain,
    ParsedPolicy,
    RangeDomain,
    ToolPolicy,
)
from tasks.core.policy import filter_policy, parse_policy, policy_export
from tasks.core.policy_checks import check_policy
from tasks.core.policy_domains import extract_value_domains

POLICY = """\
<!-- POLICY_START -->
## Global Rules
- The user is a patient; the current time is 2025-03-01T09:00:00Z.
- Authorization binds the session to one patient.
<!-- GLOBAL_RULES_END -->

<!-- TOOL: authorize_patient -->
### Tool: authorize_patient
Purpose: Bind the session to the patient
named by `patient_id`.

**Preconditions:**
- No patient is bound yet.
Input validation:
- `patient_id` must exist in Patient.patient_id.
Permission outcomes:
- Permitted: the patient exists.
- Rejected: the patient does not exist.
Effects: the session acts for that patient.
<!-- TOOL_END: authorize_patient -->

<!-- TOOL: book_visit -->
### Tool: book_visit
Purpose: Book a visit for the authorized patient.
Preconditions:
- The session is authorized.
- The physician is available:
  - on the requested date
  - in the visit_type they offer
Input validation:
- `visit_type` in {checkup, cleaning}
- duration within [15, 60]
Permission outcomes:
- Permitted: the slot is free.
- Rejected: the slot is taken,
  or the date is in the past.
Effects:
- A Visit row with status `booked`.
#### Dependencies
1. authorize_patient
<!-- TOOL_END: book_visit -->

<!-- POLICY_END -->
"""

TOOLS = ["authorize_patient", "book_visit"]
TABLES = {
    "Patient": {"patient_id", "full_name"},
    "Visit": {"visit_id", "patient_id", "physician_id", "visit_type", "status"},
}
KNOWN = {"duration", "booked", "checkup", "cleaning"}


def _check(text: str) -> list[str]:
    return check_policy(
        parse_policy(text),
        tool_names=TOOLS,
        tables=TABLES,
        core_entity="Patient",
        known_terms=KNOWN,
    )


def _with_global_rule(rule: str) -> str:
    return POLICY.replace(
        "<!-- GLOBAL_RULES_END -->", f"- {rule}\n<!-- GLOBAL_RULES_END -->"
    )


def test_well_formed_policy_parses_into_sections_and_fields():
    """Global rules, both sections and every headed list are read."""
    parsed = parse_policy(POLICY)
    assert parsed.problems == ()
    assert parsed.global_rules == (
        "## Global Rules\n"
        "- The user is a patient; the current time is 2025-03-01T09:00:00Z.\n"
        "- Authorization binds the session to one patient."
    )
    assert list(parsed.tools) == TOOLS
    assert parsed.tools["authorize_patient"].model_dump(exclude={"text"}) == {
        "name": "authorize_patient",
        "purpose": "Bind the session to the patient named by `patient_id`.",
        "preconditions": ("No patient is bound yet.",),
        "input_validation": ("`patient_id` must exist in Patient.patient_id.",),
        "permission_outcomes": (
            "Permitted: the patient exists.",
            "Rejected: the patient does not exist.",
        ),
        "effects": ("the session acts for that patient.",),
        "dependencies": (),
    }
    book = parsed.tools["book_visit"]
    assert book.text.startswith("### Tool: book_visit\nPurpose:")
    assert book.text.endswith("1. authorize_patient")
    assert book.preconditions == (
        "The session is authorized.",
        "The physician is available: on the requested date; in the visit_type "
        "they offer",
    )
    assert book.permission_outcomes == (
        "Permitted: the slot is free.",
        "Rejected: the slot is taken, or the date is in the past.",
    )
    assert book.effects == ("A Visit row with status `booked`.",)
    assert book.dependencies == ("authorize_patient",)


def test_wrapping_markdown_fence_is_stripped():
    """A policy inside a ```markdown fence parses as the bare policy."""
    assert parse_policy(f"```markdown\n{POLICY}```\n") == parse_policy(POLICY)


def test_export_then_parse_gives_back_the_same_policy():
    """Round trip: parse(export(p)) == p, and JSON round trip of the model."""
    parsed = parse_policy(POLICY)
    assert parse_policy(policy_export(parsed)) == parsed
    assert ParsedPolicy.model_validate_json(parsed.model_dump_json()) == parsed


def test_export_writes_markers_around_each_section():
    """The serialised form is the marker layout the prompt asks for."""
    parsed = ParsedPolicy(
        global_rules="Rules.",
        tools={"a": ToolPolicy(name="a", text="Purpose: A.", purpose="A.")},
    )
    assert policy_export(parsed) == (
        "<!-- POLICY_START -->\nRules.\n<!-- GLOBAL_RULES_END -->\n\n"
        "<!-- TOOL: a -->\nPurpose: A.\n<!-- TOOL_END: a -->\n\n<!-- POLICY_END -->\n"
    )


def test_text_without_markers_is_all_global_rules_and_reports_each_marker():
    """No markers: the whole text is the global rules, and three markers are missing."""
    parsed = parse_policy("Be polite.\nConfirm writes.\n")
    assert parsed.global_rules == "Be polite.\nConfirm writes."
    assert parsed.tools == {}
    assert parsed.problems == (
        "The policy lacks `<!-- POLICY_START -->`; it must open the policy.",
        "The policy lacks `<!-- GLOBAL_RULES_END -->`; put it after the global "
        "rules, before the first tool section.",
        "The policy lacks `<!-- POLICY_END -->`; put it after the last tool section.",
    )


def test_global_rules_end_at_the_first_tool_when_their_marker_is_missing():
    """Without GLOBAL_RULES_END the first tool marker ends the global rules."""
    parsed = parse_policy(
        "<!-- POLICY_START -->\nRules.\n<!-- TOOL: a -->\nA.\n<!-- TOOL_END: a -->\n"
        "<!-- POLICY_END -->"
    )
    assert parsed.global_rules == "Rules."
    assert parsed.tools["a"].text == "A."
    assert parsed.problems == (
        "The policy lacks `<!-- GLOBAL_RULES_END -->`; put it after the global "
        "rules, before the first tool section.",
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            "<!-- TOOL: a -->\nA.\n<!-- TOOL: b -->\nB.\n<!-- TOOL_END: b -->\n",
            "Tool section 'a' is not closed; add `<!-- TOOL_END: a -->` before "
            "`<!-- TOOL: b -->`.",
        ),
        (
            "<!-- TOOL: a -->\nA.\n<!-- TOOL_END: b -->\n",
            "`<!-- TOOL_END: b -->` closes the section of 'a'; the names must match.",
        ),
        (
            "<!-- TOOL_END: a -->\n",
            "`<!-- TOOL_END: a -->` closes no section; add `<!-- TOOL: a -->` "
            "before the section or remove it.",
        ),
        (
            "<!-- TOOL: a -->\nA.\n<!-- TOOL_END: a -->\n"
            "<!-- TOOL: a -->\nA2.\n<!-- TOOL_END: a -->\n",
            "Tool 'a' has 2 sections; merge them into one.",
        ),
        (
            "<!-- TOOL: a -->\nA.\n<!-- TOOL_END: a -->\nNote: be kind.\n",
            "Text outside every section would be dropped: 'Note: be kind.'; move it "
            "into the global rules or a tool section.",
        ),
        (
            "<!-- TOOL: get patient -->\nA.\n<!-- TOOL_END: get patient -->\n",
            "`<!-- TOOL: get patient -->` does not hold a tool name; use the exact "
            "function name.",
        ),
    ],
)
def test_section_marker_problems_are_reported_not_raised(body, problem):
    """Each broken pairing of tool markers is one sentence naming the marker."""
    text = (
        "<!-- POLICY_START -->\nRules.\n<!-- GLOBAL_RULES_END -->\n"
        f"{body}<!-- POLICY_END -->\n"
    )
    assert parse_policy(text).problems == (problem,)


def test_unclosed_last_section_keeps_its_text_and_is_reported():
    """A section that runs into POLICY_END is kept and named as unclosed."""
    parsed = parse_policy(
        "<!-- POLICY_START -->\nR.\n<!-- GLOBAL_RULES_END -->\n<!-- TOOL: a -->\nA.\n"
        "<!-- POLICY_END -->"
    )
    assert parsed.tools["a"].text == "A."
    assert parsed.problems == (
        "Tool section 'a' is not closed; add `<!-- TOOL_END: a -->` before "
        "`<!-- POLICY_END -->`.",
    )


def test_misplaced_and_repeated_singleton_markers_are_reported():
    """Markers out of order and twice over are named."""
    parsed = parse_policy(
        "<!-- POLICY_START -->\n<!-- TOOL: a -->\nA.\n<!-- TOOL_END: a -->\n"
        "<!-- GLOBAL_RULES_END -->\n<!-- POLICY_END -->\n<!-- POLICY_END -->\n"
    )
    assert parsed.problems[:2] == (
        "The policy has 2 `<!-- POLICY_END -->` markers; keep exactly one.",
        "`<!-- GLOBAL_RULES_END -->` must come before the first tool section, but "
        "`<!-- TOOL: a -->` comes first.",
    )


def test_tool_after_policy_end_is_reported():
    """A section after POLICY_END is named in the problem."""
    parsed = parse_policy(
        "<!-- POLICY_START -->\nR.\n<!-- GLOBAL_RULES_END -->\n<!-- POLICY_END -->\n"
        "<!-- TOOL: a -->\nA.\n<!-- TOOL_END: a -->\n"
    )
    assert parsed.problems == (
        "`<!-- POLICY_END -->` must come after the last tool section, but "
        "`<!-- TOOL_END: a -->` follows it.",
    )


def test_filter_keeps_trajectory_order_once_per_tool():
    """Sections follow first-call order, repeated calls add no duplicate section."""
    parsed = parse_policy(POLICY)
    filtered = filter_policy(
        parsed, ["book_visit", "Authorize_Patient", "book_visit", "unknown_tool"]
    )
    assert filtered == policy_export(
        ParsedPolicy(
            global_rules=parsed.global_rules,
            tools={
                "book_visit": parsed.tools["book_visit"],
                "authorize_patient": parsed.tools["authorize_patient"],
            },
        )
    )
    assert filtered.count("<!-- TOOL: book_visit -->") == 1
    assert filtered.index("<!-- TOOL: book_visit -->") < filtered.index(
        "<!-- TOOL: authorize_patient -->"
    )


def test_filter_with_no_known_tool_keeps_global_rules_and_markers():
    """Only the global rules remain, still between their markers."""
    parsed = parse_policy(POLICY)
    assert filter_policy(parsed, []) == (
        f"<!-- POLICY_START -->\n{parsed.global_rules}\n<!-- GLOBAL_RULES_END -->\n\n"
        "<!-- POLICY_END -->\n"
    )


def test_clean_policy_has_no_check_problems():
    """The fixture policy stays inside the schema and the rules."""
    assert _check(POLICY) == []


def test_marker_problems_are_part_of_the_check():
    """The parser's problems come first in the check's answer."""
    problems = _check(POLICY.replace("<!-- POLICY_END -->", ""))
    assert problems == [
        "The policy lacks `<!-- POLICY_END -->`; put it after the last tool section."
    ]


def test_tool_without_section_is_named():
    """Every blueprint tool needs a section."""
    problems = check_policy(
        parse_policy(POLICY),
        tool_names=[*TOOLS, "cancel_visit"],
        tables=TABLES,
        core_entity="Patient",
        known_terms=KNOWN,
    )
    assert problems == [
        "The policy has no section for tool 'cancel_visit'; add "
        "`<!-- TOOL: cancel_visit -->` … `<!-- TOOL_END: cancel_visit -->` between "
        "`<!-- GLOBAL_RULES_END -->` and `<!-- POLICY_END -->`."
    ]


def test_section_for_unknown_tool_is_named():
    """A section may only name a tool of the server."""
    problems = check_policy(
        parse_policy(POLICY),
        tool_names=["authorize_patient"],
        tables=TABLES,
        core_entity="Patient",
        known_terms=KNOWN,
    )
    assert problems == [
        "Tool section 'book_visit' names no tool of this server; rename it to one "
        "of authorize_patient, or remove it."
    ]


def test_qualified_reference_to_missing_column_or_table_is_named():
    """`Table.column` must exist; the sentence lists what does."""
    problems = _check(
        POLICY.replace("- No patient is bound yet.", "- Patient.tier and Clinic.name")
    )
    assert problems == [
        "Tool section 'authorize_patient': `Patient.tier` refers to column 'tier', "
        "which table 'Patient' lacks; its columns are full_name, patient_id.",
        "Tool section 'authorize_patient': `Clinic.name` refers to table 'Clinic', "
        "which the schema lacks; the tables are Patient, Visit.",
    ]


def test_invented_column_names_are_named_but_known_terms_pass():
    """Backticked and column-like identifiers outside the schema are problems."""
    problems = _check(
        _with_global_rule(
            "Gold members (`loyalty_tier`) skip refund_status and `Insurer` "
            "checks; `duration`, visit_type and `booked` are fine, so is follow_up."
        )
    )
    closing = (
        "is not a column or table of the schema, nor a tool, parameter or enum "
        "value; the policy may only use what the schema has, so remove the rule or "
        "use an existing column."
    )
    assert problems == [
        f"Global rules: `loyalty_tier` {closing}",
        f"Global rules: `Insurer` {closing}",
        f"Global rules: `refund_status` {closing}",
    ]


def test_auth_token_wording_is_named():
    """Authorization binds the session; a token is never issued."""
    problems = _check(
        POLICY.replace(
            "Effects: the session acts for that patient.",
            "Effects: issues an auth_token for later calls.",
        )
    )
    assert problems == [
        "Tool section 'authorize_patient': 'auth_token' implies an authorization "
        "token, but authorization only binds the session to the user and issues no "
        "token; drop the token and say that later calls act for the authorized user."
    ]


def test_token_named_column_is_not_a_token_problem():
    """A schema column containing 'token' is allowed by the closed world."""
    tables = TABLES | {"Wallet": {"wallet_id", "token_symbol"}}
    problems = check_policy(
        parse_policy(_with_global_rule("Show Wallet.token_symbol as is.")),
        tool_names=TOOLS,
        tables=tables,
        core_entity="Patient",
        known_terms=KNOWN,
    )
    assert problems == []


@pytest.mark.parametrize(
    "phrase", ["current system time", "datetime.now", "now()", "wall clock"]
)
def test_real_clock_instructions_are_named(phrase):
    """Time rules must use the simulation time, never the machine clock."""
    problems = _check(_with_global_rule(f"Compare dates with the {phrase}."))
    assert problems == [
        f"Global rules: '{phrase}' points at the real clock; every time rule must "
        "use the simulation time stated in the global rules."
    ]


def test_global_rules_must_name_the_core_entity():
    """The user's entity is stated in the global rules (split from PascalCase)."""
    problems = check_policy(
        parse_policy(POLICY),
        tool_names=TOOLS,
        tables=TABLES | {"BankAccount": {"bank_account_id"}},
        core_entity="BankAccount",
        known_terms=KNOWN,
    )
    assert problems == [
        "Global rules never name the user's entity 'BankAccount'; state that the "
        "user is a bank account and that authorization binds the session to that "
        "bank account."
    ]


def test_empty_global_rules_are_a_problem():
    """A policy needs shared rules before its tool sections."""
    text = POLICY.split("## Global Rules")[0] + POLICY.split("one patient.\n")[1]
    assert _check(text) == [
        "The global rules are empty; state who the user is, the simulation time and "
        "the rules every tool shares before `<!-- GLOBAL_RULES_END -->`."
    ]


def test_value_domains_are_read_per_scope():
    """Enum, range, array-choice and boolean statements become typed domains."""
    text = """\
<!-- POLICY_START -->
currency ∈ {USD, EUR}
<!-- GLOBAL_RULES_END -->
<!-- TOOL: book -->
- `cabin` in {"economy", 'business'}
- seats within [1, 5]; price float in [0, 100]; discount in [0.5, 1.5]
- mode: (fast|slow)
- tags must be an array of 1 to 3 labels chosen from: red, green and blue.
- `notify` is a boolean
- cabin in {first}
<!-- TOOL_END: book -->
<!-- POLICY_END -->
"""
    assert extract_value_domains(text) == {
        "_global": {"currency": EnumDomain(values=("USD", "EUR"))},
        "book": {
            "cabin": EnumDomain(values=("economy", "business")),
            "seats": RangeDomain(minimum=1, maximum=5, integer=True),
            "price": RangeDomain(minimum=0.0, maximum=100.0, integer=False),
            "discount": RangeDomain(minimum=0.5, maximum=1.5, integer=False),
            "mode": EnumDomain(values=("fast", "slow")),
            "tags": ArrayChoiceDomain(
                min_items=1, max_items=3, choices=("red", "green", "blue")
            ),
            "notify": BooleanDomain(),
        },
    }


def test_value_domains_without_markers_are_global():
    """Unmarked text counts as global rules; an inverted range is ignored."""
    domains = extract_value_domains("rating int in [1, 5]. level in [9, 2]. x: bool")
    assert domains == {
        "_global": {
            "rating": RangeDomain(minimum=1, maximum=5, integer=True),
            "x": BooleanDomain(),
        }
    }
    assert isinstance(domains["_global"]["rating"].minimum, int)

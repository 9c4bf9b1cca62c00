"""Member policies merge into one fused policy that keeps every tool's section
under its qualified name, with the model's global and bridge rules checked."""

from __future__ import annotations

from schemas.fusion import MergedPolicyDraft
from tasks.core.policy import parse_policy
from tasks.core.policy_merge import (
    assemble,
    merge_problems,
    qualified_global_rules,
    qualified_tools,
    qualify,
)
from tests.dental_policy import POLICY

BILLING = """\
<!-- POLICY_START -->
## Global Rules
- Call `authorize_patient` first; then `pay_invoice` needs `confirm` set to true.
<!-- GLOBAL_RULES_END -->

<!-- TOOL: authorize_patient -->
### Tool: authorize_patient
Purpose: Bind the session to a patient of the billing service.
<!-- TOOL_END: authorize_patient -->

<!-- TOOL: pay_invoice -->
### Tool: pay_invoice
Purpose: Pay one invoice after authorize_patient succeeded.
<!-- TOOL_END: pay_invoice -->
"""
MEMBERS = {
    "DentalAppointments": parse_policy(POLICY),
    "TreatmentBilling": parse_policy(BILLING),
}
GOOD = MergedPolicyDraft(
    global_rules="- Call `DentalAppointments__authorize_patient` before dental "
    "tools and `TreatmentBilling__authorize_patient` before billing tools.",
    bridge_rules=[
        {
            "rule": "Pay with `TreatmentBilling__pay_invoice` only for visits "
            "`DentalAppointments__book_appointment` booked for the same patient.",
            "servers": ["DentalAppointments", "TreatmentBilling"],
        }
    ],
)


def test_same_named_tools_of_two_members_stay_apart():
    """Both members have `authorize_patient`; each keeps its own section under
    its own qualified name, nothing is dropped, and the markers parse."""
    markdown, parsed = assemble(GOOD, MEMBERS)
    assert parsed.problems == ()
    expected = set(qualified_tools(MEMBERS))
    assert set(parsed.tools) == expected
    assert len(expected) == len(MEMBERS["DentalAppointments"].tools) + 2
    billing = parsed.tools["TreatmentBilling__authorize_patient"].text
    assert "billing service" in billing
    pay = parsed.tools["TreatmentBilling__pay_invoice"].text
    assert "after TreatmentBilling__authorize_patient succeeded" in pay
    assert "### Bridge rules" in parsed.global_rules
    assert "(services: DentalAppointments, TreatmentBilling)" in markdown
    assert parse_policy(markdown).tools.keys() == parsed.tools.keys()


def test_member_rules_are_shown_to_the_model_with_qualified_names():
    """Only whole tool names are qualified, once."""
    rules = qualified_global_rules(MEMBERS)["TreatmentBilling"]
    assert "`TreatmentBilling__authorize_patient` first" in rules
    assert "`TreatmentBilling__pay_invoice`" in rules
    assert (
        qualify(
            "re_authorize_patient and X.authorize_patient", "S", ["authorize_patient"]
        )
        == "re_authorize_patient and X.authorize_patient"
    )


def test_a_merge_draft_with_markers_bare_names_or_one_sided_bridges_is_sent_back():
    """Each problem is one sentence the model can act on."""
    bad = MergedPolicyDraft(
        global_rules="- Call `authorize_patient` first. <!-- GLOBAL_RULES_END -->",
        bridge_rules=[
            {"rule": "Share nothing.", "servers": ["DentalAppointments"]},
            {"rule": "Ask Ops.", "servers": ["DentalAppointments", "Ops"]},
        ],
    )
    problems = merge_problems(bad, MEMBERS)
    assert problems == [
        "global_rules contains a marker comment; write plain markdown",
        "global_rules names tools without their service: authorize_patient; "
        "write Server__tool",
        "bridge_rules[0] must connect at least two member services",
        "bridge_rules[1] names Ops, which are not member services "
        "(DentalAppointments, TreatmentBilling)",
    ]
    assert merge_problems(GOOD, MEMBERS) == []
    empty = MergedPolicyDraft(global_rules=" ", bridge_rules=[])
    assert len(merge_problems(empty, MEMBERS)) == 2

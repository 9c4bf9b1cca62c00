"""Merging member policies into the policy of a fused environment (s13).

Input: the members' parsed policies (server -> `ParsedPolicy`) and the model's
merge of their global rules with bridge rules. Output: the members' texts with
tool names qualified (`book_appointment` -> `DentalAppointments__book_appointment`,
the name the agent sees), the problems of a merge draft, and the fused policy's
markdown with the s07 markers, in which every member tool keeps its own section
under its qualified name (nothing a member said about a tool is lost). Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from schemas.fusion import BridgeRuleDraft, MergedPolicyDraft, agent_tool_names
from schemas.policy import ParsedPolicy
from tasks.core.policy import parse_policy, policy_export, tool_end, tool_start

BRIDGE_HEADING = "### Bridge rules"


def qualify(text: str, server: str, names: Mapping[str, str]) -> str:
    """`text` with each of the server's tool names (as whole words, not already
    qualified) replaced by its agent-facing name (`names`: tool -> agent name)."""
    if not names:
        return text
    tools = sorted(names, key=len, reverse=True)
    pattern = re.compile(rf"(?<![\w.])({'|'.join(re.escape(t) for t in tools)})(?!\w)")
    return pattern.sub(lambda m: names[m.group(1)], text)


def _names_of(members: Mapping[str, ParsedPolicy], server: str) -> dict[str, str]:
    """Tool -> agent-facing name, for one member."""
    return {
        tool: name
        for name, (owner, tool) in qualified_tools(members).items()
        if owner == server
    }


def qualified_global_rules(members: Mapping[str, ParsedPolicy]) -> dict[str, str]:
    """Each member's global rules with its tool names qualified (what the model
    merges)."""
    return {
        server: qualify(policy.global_rules, server, _names_of(members, server))
        for server, policy in sorted(members.items())
    }


def qualified_tools(members: Mapping[str, ParsedPolicy]) -> dict[str, tuple[str, str]]:
    """Agent-facing name -> (server, tool) for every member tool, in member order."""
    return agent_tool_names(
        [
            (server, tool)
            for server, policy in sorted(members.items())
            for tool in policy.tools
        ]
    )


def merge_problems(
    draft: MergedPolicyDraft, members: Mapping[str, ParsedPolicy]
) -> list[str]:
    """What is wrong with a merge draft, one sentence each (re-asked)."""
    problems: list[str] = []
    servers = set(members)
    if not draft.global_rules.strip():
        problems.append("global_rules is empty; keep every member's global rules")
    for field, text in [("global_rules", draft.global_rules)] + [
        (f"bridge_rules[{i}].rule", b.rule) for i, b in enumerate(draft.bridge_rules)
    ]:
        if "<!--" in text or "-->" in text:
            problems.append(f"{field} contains a marker comment; write plain markdown")
        bare = _bare_tools(text, members)
        if bare:
            problems.append(
                f"{field} names tools without their service: {', '.join(bare)}; "
                "write Server__tool"
            )
    if not draft.bridge_rules:
        problems.append(
            "bridge_rules is empty; state at least one rule for what passes between "
            f"the services {', '.join(sorted(servers))}"
        )
    for i, bridge in enumerate(draft.bridge_rules):
        problems += _bridge_problems(i, bridge, servers)
    return problems


def _bridge_problems(i: int, bridge: BridgeRuleDraft, servers: set[str]) -> list[str]:
    named = set(bridge.servers)
    unknown = sorted(named - servers)
    if unknown:
        return [
            f"bridge_rules[{i}] names {', '.join(unknown)}, which are not member "
            f"services ({', '.join(sorted(servers))})"
        ]
    if len(named) < 2:
        return [f"bridge_rules[{i}] must connect at least two member services"]
    return []


def _bare_tools(text: str, members: Mapping[str, ParsedPolicy]) -> list[str]:
    found: set[str] = set()
    for policy in members.values():
        for tool in policy.tools:
            if re.search(rf"(?<![\w.]){re.escape(tool)}(?!\w)", text):
                found.add(tool)
    return sorted(found)


def assemble(
    draft: MergedPolicyDraft, members: Mapping[str, ParsedPolicy]
) -> tuple[str, ParsedPolicy]:
    """The fused policy: merged global rules, a bridge-rules block, then every
    member tool's section under its qualified name. Returns the markdown (as
    `policy_export` writes it) and its parse, whose `problems` say whether the
    markers hold."""
    bridge = [
        f"- {' '.join(b.rule.split())} (services: {', '.join(sorted(set(b.servers)))})"
        for b in draft.bridge_rules
    ]
    parts = [
        "<!-- POLICY_START -->",
        "## Global Rules",
        draft.global_rules.strip(),
        "",
        BRIDGE_HEADING,
        *bridge,
        "<!-- GLOBAL_RULES_END -->",
    ]
    for server, policy in sorted(members.items()):
        names = _names_of(members, server)
        for tool, section in policy.tools.items():
            text = qualify(section.text, server, names)
            parts += ["", tool_start(names[tool]), text, tool_end(names[tool])]
    parts += ["", "<!-- POLICY_END -->", ""]
    parsed = parse_policy("\n".join(parts))
    return policy_export(parsed), parsed

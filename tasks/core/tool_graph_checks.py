"""s08 tool graph checks: takes a `ServerBlueprint` and the model's `ToolGraphDraft`
or `PreconditionsDraft`; returns problem sentences naming the tool or link to fix,
sent back to the model verbatim as the re-ask (unknown names come with a
did-you-mean suggestion), and the blueprint's authorization tool; no side
effects."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence

from schemas.blueprint import ServerBlueprint
from schemas.tool_graph import PreconditionsDraft, ToolGraphDraft
from tasks.core.tool_graph_paths import back_edges


def authorization_tool(blueprint: ServerBlueprint) -> str:
    """The blueprint's authorization function, the root of its tool graph.

    Args:
        blueprint: A canonical blueprint.

    Returns:
        The name of the one function with `is_authorization` set.

    Raises:
        ValueError: If the blueprint has no or several authorization functions.
    """
    found = _authorization_tools(blueprint)
    if len(found) != 1:
        raise ValueError(
            f"blueprint {blueprint.server_name} has {len(found)} authorization "
            "functions; a tool graph needs exactly one as its root"
        )
    return found[0]


def check_graph_draft(
    draft: ToolGraphDraft, *, blueprint: ServerBlueprint
) -> list[str]:
    """Problems with the model's tool graph, as re-ask sentences.

    Args:
        draft: The model's graph.
        blueprint: The server whose tools the graph connects.

    Returns:
        Problem sentences; empty when every node and link endpoint is a tool of
        the server, no link is a self loop, and a server with several tools has
        at least one link.
    """
    tools = _tool_names(blueprint)
    endpoints = [end for link in draft.links for end in (link.source, link.target)]
    problems = _unknown_names([*draft.nodes, *endpoints], tools, blueprint)
    loops = dict.fromkeys(
        link.source for link in draft.links if link.source == link.target
    )
    problems += [
        f"The link '{name}' -> '{name}' is a self loop; a tool cannot depend on "
        "itself, so remove it."
        for name in loops
    ]
    if not draft.links and len(tools) > 1:
        problems.append(
            "The graph has no links; link each tool from the tools it depends on."
        )
    return problems


def check_preconditions(
    draft: PreconditionsDraft, *, blueprint: ServerBlueprint
) -> list[str]:
    """Problems with the model's tool preconditions, as re-ask sentences.

    Args:
        draft: The model's preconditions.
        blueprint: The server whose tools they constrain.

    Returns:
        Problem sentences; empty when keys and required tools are tools of the
        server, no tool requires itself directly or through others, and the
        authorization tool (always called first) requires nothing.
    """
    tools = _tool_names(blueprint)
    mentioned = [
        name
        for tool, required in draft.preconditions.items()
        for name in (tool, *required)
    ]
    problems = _unknown_names(mentioned, tools, blueprint)
    for tool, required in draft.preconditions.items():
        if tool in required:
            problems.append(
                f"'{tool}' lists itself as a precondition; a tool cannot require "
                "itself."
            )
    roots = _authorization_tools(blueprint)
    for root in roots if len(roots) == 1 else ():
        if any(name != root for name in draft.preconditions.get(root, ())):
            problems.append(
                f"'{root}' is the authorization tool and always runs first, so it "
                "cannot require other tools."
            )
    known = set(tools)
    pairs = [
        (before, tool)
        for tool, required in draft.preconditions.items()
        for before in dict.fromkeys(required)
        if tool != before and {tool, before} <= known
    ]
    for before, tool in back_edges(tools, pairs):
        problems.append(
            f"'{tool}' cannot require '{before}', because '{before}' already "
            f"requires '{tool}' directly or through other tools."
        )
    return problems


def graph_checker(blueprint: ServerBlueprint) -> Callable[[ToolGraphDraft], list[str]]:
    """The `check` function for `ToolGraphDraft` validation context."""
    return lambda draft: check_graph_draft(draft, blueprint=blueprint)


def preconditions_checker(
    blueprint: ServerBlueprint,
) -> Callable[[PreconditionsDraft], list[str]]:
    """The `check` function for `PreconditionsDraft` validation context."""
    return lambda draft: check_preconditions(draft, blueprint=blueprint)


def _tool_names(blueprint: ServerBlueprint) -> list[str]:
    return [function.name for function in blueprint.functions]


def _authorization_tools(blueprint: ServerBlueprint) -> list[str]:
    return [
        function.name for function in blueprint.functions if function.is_authorization
    ]


def _unknown_names(
    names: Iterable[str], tools: Sequence[str], blueprint: ServerBlueprint
) -> list[str]:
    """One sentence per unknown name (first-mention order), with a suggestion."""
    known = set(tools)
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if not unknown:
        return []
    folded: dict[str, str] = {}
    for tool in tools:
        folded.setdefault(tool.lower(), tool)
    problems: list[str] = []
    for name in unknown:
        close = difflib.get_close_matches(name.lower(), list(folded), n=1)
        hint = f"; did you mean '{folded[close[0]]}'?" if close else "."
        problems.append(f"'{name}' is not a tool of {blueprint.server_name}{hint}")
    problems.append(f"Use only these tool names: {', '.join(tools)}.")
    return problems

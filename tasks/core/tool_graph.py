"""s08 tool graph assembly: takes a `ServerBlueprint`, the model's `ToolGraphDraft`
and optional `PreconditionsDraft`; returns the deterministically repaired
`ToolGraph` (a DAG whose only source is the authorization tool, every tool
reachable, each change recorded as a sentence), the canonical preconditions, the
precondition-filtered trajectories and the `tool_graphs/<Server>.json` shape
(fixing reference defect 17); no side effects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from schemas.blueprint import ServerBlueprint
from schemas.tool_graph import (
    LinkType,
    PreconditionsDraft,
    ToolGraph,
    ToolGraphDraft,
    ToolLink,
)
from tasks.core.tool_graph_checks import authorization_tool, check_preconditions
from tasks.core.tool_graph_paths import (
    ancestors,
    back_edges,
    enumerate_trajectories,
    topological_order,
)

ROOT_LINK_TYPE: LinkType = "state dependency"
"""Type of the links repair adds from the authorization tool."""

_Pair = tuple[str, str]


def repair_graph(draft: ToolGraphDraft, *, blueprint: ServerBlueprint) -> ToolGraph:
    """Repair the model's graph into a DAG rooted at the authorization tool.

    In order: unknown nodes, links with an unknown endpoint, self loops and
    links into the root are dropped; missing tools are added; repeated links
    keep their first type; a depth-first search from the root, then from each
    unvisited tool, visiting tools in blueprint function order, drops every back
    edge (so the result is acyclic); every other tool that nothing links to is
    linked from the root, which makes the root the only source and every tool
    reachable from it. Each change is recorded in `repairs`.

    Args:
        draft: The model's graph (checked or not).
        blueprint: The server whose tools the graph connects.

    Returns:
        The graph with nodes in blueprint order, links sorted by (source,
        target) blueprint order, no preconditions and no trajectories.

    Raises:
        ValueError: If the blueprint has no or several authorization functions.
    """
    tools = [function.name for function in blueprint.functions]
    root = authorization_tool(blueprint)
    order = {name: position for position, name in enumerate(tools)}
    repairs = [
        f"Dropped node '{name}', which is not a tool of {blueprint.server_name}."
        for name in dict.fromkeys(draft.nodes)
        if name not in order
    ]
    repairs += [
        f"Added tool '{name}', which the graph left out."
        for name in tools
        if name not in draft.nodes
    ]
    links: dict[_Pair, LinkType] = {}
    for link in draft.links:
        pair = (link.source, link.target)
        if link.source not in order or link.target not in order:
            repairs.append(f"Dropped link {_arrow(pair)}, which names an unknown tool.")
        elif link.source == link.target:
            repairs.append(f"Dropped self loop {_arrow(pair)}.")
        elif link.target == root:
            repairs.append(f"Dropped link {_arrow(pair)} into the root '{root}'.")
        else:
            links.setdefault(pair, link.type)
    for pair in back_edges([root, *tools], links):
        del links[pair]
        repairs.append(f"Dropped link {_arrow(pair)} to break a cycle.")
    targets = {target for _, target in links}
    for name in tools:
        if name != root and name not in targets:
            links[(root, name)] = ROOT_LINK_TYPE
            repairs.append(
                f"Linked '{name}' from the root '{root}', as no link led to it."
            )
    graph = ToolGraph(
        server_name=blueprint.server_name,
        root=root,
        nodes=tuple(tools),
        links=tuple(
            ToolLink(source=source, target=target, type=links[(source, target)])
            for source, target in sorted(
                links, key=lambda pair: (order[pair[0]], order[pair[1]])
            )
        ),
        repairs=tuple(repairs),
    )
    topological_order(graph)  # raises if the repair above left a cycle
    return graph


def canonical_preconditions(
    draft: PreconditionsDraft, *, blueprint: ServerBlueprint
) -> dict[str, tuple[str, ...]]:
    """Every tool's required tools, in blueprint function order.

    Args:
        draft: The model's preconditions.
        blueprint: The server whose tools they constrain.

    Returns:
        One entry per tool (blueprint order), with its required tools deduped.

    Raises:
        ValueError: If the draft does not pass `check_preconditions`; names are
            never dropped silently, since an unknown requirement would quietly
            invalidate every trajectory with that tool.
    """
    problems = check_preconditions(draft, blueprint=blueprint)
    if problems:
        raise ValueError(
            f"preconditions of {blueprint.server_name} fail the check: "
            + " ".join(problems)
        )
    tools = [function.name for function in blueprint.functions]
    return {
        tool: tuple(name for name in tools if name in draft.preconditions.get(tool, ()))
        for tool in tools
    }


def build_tool_graph(
    draft: ToolGraphDraft,
    preconditions_draft: PreconditionsDraft | None,
    *,
    blueprint: ServerBlueprint,
    min_length: int,
    max_length: int,
    max_paths: int | None,
) -> ToolGraph:
    """Repair the graph, canonicalise the preconditions and enumerate trajectories.

    Without preconditions, `preconditions_given` is false and a repair sentence
    says the trajectories were not filtered. A precondition that no path from
    the root can satisfy (the required tool is not an ancestor) is reported in
    `repairs`, since it removes every trajectory with that tool.

    Args:
        draft: The model's graph.
        preconditions_draft: The model's preconditions, or None when there are
            none (no policy, or extraction was not run).
        blueprint: The server whose tools the graph connects.
        min_length: Fewest tools in a trajectory.
        max_length: Most tools in a trajectory.
        max_paths: Keep only the first this many valid trajectories; None keeps
            all.

    Returns:
        The complete tool graph.

    Raises:
        ValueError: If the blueprint has no single authorization function, the
            preconditions fail their check, or the lengths are out of range.
    """
    graph = repair_graph(draft, blueprint=blueprint)
    repairs = list(graph.repairs)
    if preconditions_draft is None:
        preconditions: dict[str, tuple[str, ...]] = {}
        repairs.append(
            "No tool preconditions were given, so trajectories were not filtered "
            "by them."
        )
    else:
        preconditions = canonical_preconditions(
            preconditions_draft, blueprint=blueprint
        )
        repairs += _unsatisfiable(preconditions, ancestors(graph))
    trajectories = enumerate_trajectories(
        graph,
        min_length=min_length,
        max_length=max_length,
        max_paths=max_paths,
        preconditions=preconditions,
    )
    return ToolGraph.model_validate(
        graph.model_dump()
        | {
            "preconditions": preconditions,
            "preconditions_given": preconditions_draft is not None,
            "trajectories": trajectories,
            "repairs": tuple(repairs),
        }
    )


def tool_graph_export(graph: ToolGraph) -> dict[str, object]:
    """The graph in the `tool_graphs/<Server>.json` node-link shape.

    Args:
        graph: The tool graph.

    Returns:
        The reference keys (`directed`, `multigraph`, `nodes`, `links`,
        `tool_preconditions`, `valid_trajectories`) plus `root`,
        `preconditions_given` and `repairs`.
    """
    return {
        "directed": True,
        "multigraph": False,
        "nodes": [{"id": name} for name in graph.nodes],
        "links": [link.model_dump(mode="json") for link in graph.links],
        "tool_preconditions": {
            tool: list(required) for tool, required in graph.preconditions.items()
        },
        "valid_trajectories": [list(path) for path in graph.trajectories],
        "root": graph.root,
        "preconditions_given": graph.preconditions_given,
        "repairs": list(graph.repairs),
    }


def _unsatisfiable(
    preconditions: Mapping[str, Sequence[str]], before: Mapping[str, frozenset[str]]
) -> list[str]:
    return [
        f"'{tool}' requires '{required}', which no path from the root passes "
        f"before it, so no trajectory includes '{tool}'."
        for tool, needs in preconditions.items()
        for required in needs
        if required not in before[tool]
    ]


def _arrow(pair: _Pair) -> str:
    return f"'{pair[0]}' -> '{pair[1]}'"

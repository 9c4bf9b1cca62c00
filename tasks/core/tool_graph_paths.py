"""s08 graph algorithms over a canonical `ToolGraph`: takes the graph and, where
relevant, its per-tool preconditions; returns a deterministic topological order,
each tool's ancestors, the back edges that break cycles, the trajectories
(simple paths from the root, prefixes included, shortest first) that satisfy
the preconditions, and per-length counts for reporting; no side effects."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence

from schemas.tool_graph import ToolGraph

Preconditions = Mapping[str, Sequence[str]]


def topological_order(graph: ToolGraph) -> tuple[str, ...]:
    """The nodes in a topological order, ties broken by node order.

    Args:
        graph: A tool graph.

    Returns:
        Every node once, each after all nodes that link to it.

    Raises:
        ValueError: If a link names a node the graph lacks, or the graph has a
            cycle.
    """
    index = _node_index(graph)
    successors = _successors(graph, index)
    in_degree = dict.fromkeys(graph.nodes, 0)
    for targets in successors.values():
        for target in targets:
            in_degree[target] += 1
    ready = [index[name] for name, degree in in_degree.items() if degree == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = graph.nodes[heapq.heappop(ready)]
        order.append(name)
        for target in successors[name]:
            in_degree[target] -= 1
            if in_degree[target] == 0:
                heapq.heappush(ready, index[target])
    if len(order) < len(graph.nodes):
        stuck = [name for name in graph.nodes if in_degree[name] > 0]
        raise ValueError(
            f"tool graph {graph.server_name} has a cycle among: {', '.join(stuck)}"
        )
    return tuple(order)


def ancestors(graph: ToolGraph) -> dict[str, frozenset[str]]:
    """For each node, the nodes from which a path leads to it.

    Args:
        graph: An acyclic tool graph.

    Returns:
        A mapping from every node to its ancestors (itself excluded).

    Raises:
        ValueError: If the graph has a cycle or a link to an unknown node.
    """
    found: dict[str, set[str]] = {name: set() for name in graph.nodes}
    successors = _successors(graph, _node_index(graph))
    for name in topological_order(graph):
        for target in successors[name]:
            found[target] |= found[name] | {name}
    return {name: frozenset(before) for name, before in found.items()}


def back_edges(
    starts: Sequence[str], pairs: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Edges that close a cycle in a depth-first search over `pairs`.

    The search starts from each of `starts` in turn (skipping visited nodes) and
    visits successors in the order of their first position in `starts`, so the
    result is deterministic; removing the returned edges leaves the graph
    acyclic.

    Args:
        starts: Every node, in the order to search from (repeats allowed; the
            first position counts).
        pairs: Directed (source, target) edges, without repeats.

    Returns:
        The back edges, in the order the search met them.

    Raises:
        ValueError: If an edge names a node missing from `starts`.
    """
    rank = {name: position for position, name in reversed(list(enumerate(starts)))}
    successors: dict[str, list[str]] = {name: [] for name in rank}
    for source, target in pairs:
        if source not in rank or target not in rank:
            raise ValueError(f"edge '{source}' -> '{target}' names an unknown node")
        successors[source].append(target)
    for targets in successors.values():
        targets.sort(key=rank.__getitem__)
    state: dict[str, str] = {}
    found: list[tuple[str, str]] = []
    for start in starts:
        if start in state:
            continue
        state[start] = "open"
        stack = [(start, iter(successors[start]))]
        while stack:
            node, pending = stack[-1]
            target = next(pending, None)
            if target is None:
                state[node] = "done"
                stack.pop()
            elif state.get(target) == "open":
                found.append((node, target))
            elif target not in state:
                state[target] = "open"
                stack.append((target, iter(successors[target])))
    return found


def enumerate_trajectories(
    graph: ToolGraph,
    *,
    min_length: int,
    max_length: int,
    max_paths: int | None = None,
    preconditions: Preconditions | None = None,
) -> tuple[tuple[str, ...], ...]:
    """Simple paths that start at the root and follow links, prefixes included.

    Paths are ordered by length, then lexicographically by the position of
    their tools in `graph.nodes` (blueprint function order). A path that breaks
    a precondition is pruned with all its extensions, which is exact because a
    missing earlier tool cannot be supplied later; so with `preconditions` the
    result equals `filter_by_preconditions` of the unfiltered paths, capped
    after filtering.

    Args:
        graph: The tool graph.
        min_length: Fewest tools in a returned path (at least 1).
        max_length: Most tools in a returned path.
        max_paths: Keep only the first this many paths; None keeps all.
        preconditions: For each tool, the tools that must appear earlier.

    Returns:
        The paths, without repeats.

    Raises:
        ValueError: If the lengths or the cap are out of range, the root is not
            a node, or a link names an unknown node.
    """
    if min_length < 1 or max_length < min_length:
        raise ValueError(
            f"need 1 <= min_length <= max_length, got {min_length}, {max_length}"
        )
    if max_paths is not None and max_paths < 0:
        raise ValueError(f"max_paths must not be negative, got {max_paths}")
    index = _node_index(graph)
    if graph.root not in index:
        raise ValueError(f"root '{graph.root}' is not a node of {graph.server_name}")
    successors = _successors(graph, index)
    required = preconditions or {}
    found: list[tuple[str, ...]] = []
    level = [(graph.root,)] if _allowed(graph.root, (), required) else []
    for length in range(1, max_length + 1):
        if length >= min_length:
            for path in level:
                if max_paths is not None and len(found) >= max_paths:
                    return tuple(found)
                found.append(path)
        if length == max_length:
            break
        level = [
            (*path, target)
            for path in level
            for target in successors[path[-1]]
            if target not in path and _allowed(target, path, required)
        ]
        if not level:
            break
    return tuple(found)


def filter_by_preconditions(
    trajectories: Iterable[Sequence[str]], preconditions: Preconditions
) -> tuple[tuple[str, ...], ...]:
    """Trajectories in which every tool's required tools appeared earlier.

    Args:
        trajectories: Tool sequences.
        preconditions: For each tool, the tools that must appear before it;
            tools without an entry have no requirement.

    Returns:
        The valid trajectories, in input order.
    """
    return tuple(
        tuple(path)
        for path in trajectories
        if all(
            _allowed(tool, path[:position], preconditions)
            for position, tool in enumerate(path)
        )
    )


def trajectory_stats(graph: ToolGraph) -> dict[str, object]:
    """How many trajectories a server yields, for the run report.

    Args:
        graph: A tool graph with its trajectories.

    Returns:
        `{"server_name", "nodes", "links", "trajectories", "by_length",
        "preconditions_given", "repairs"}` where `by_length` maps each path
        length (ascending) to its count and `repairs` counts repair sentences.
    """
    by_length: dict[int, int] = {}
    for path in sorted(graph.trajectories, key=len):
        by_length[len(path)] = by_length.get(len(path), 0) + 1
    return {
        "server_name": graph.server_name,
        "nodes": len(graph.nodes),
        "links": len(graph.links),
        "trajectories": len(graph.trajectories),
        "by_length": by_length,
        "preconditions_given": graph.preconditions_given,
        "repairs": len(graph.repairs),
    }


def _allowed(tool: str, before: Sequence[str], preconditions: Preconditions) -> bool:
    return all(required in before for required in preconditions.get(tool, ()))


def _node_index(graph: ToolGraph) -> dict[str, int]:
    return {name: position for position, name in enumerate(graph.nodes)}


def _successors(graph: ToolGraph, index: Mapping[str, int]) -> dict[str, list[str]]:
    """Distinct link targets of each node, in node order."""
    targets: dict[str, set[str]] = {name: set() for name in graph.nodes}
    for link in graph.links:
        for end in (link.source, link.target):
            if end not in index:
                raise ValueError(
                    f"link '{link.source}' -> '{link.target}' names '{end}', "
                    f"which is not a node of {graph.server_name}"
                )
        targets[link.source].add(link.target)
    return {
        name: sorted(found, key=index.__getitem__) for name, found in targets.items()
    }

"""Tests for s08 tool graph checks, repair, trajectory enumeration and export."""

import random

import pydantic
import pytest

from schemas.blueprint import Function, ServerBlueprint
from schemas.tool_graph import (
    LinkDraft,
    PreconditionsDraft,
    ToolGraph,
    ToolGraphDraft,
    ToolLink,
)
from tasks.core.tool_graph import (
    build_tool_graph,
    canonical_preconditions,
    repair_graph,
    tool_graph_export,
)
from tasks.core.tool_graph_checks import (
    authorization_tool,
    check_graph_draft,
    check_preconditions,
    graph_checker,
    preconditions_checker,
)
from tasks.core.tool_graph_paths import (
    ancestors,
    back_edges,
    enumerate_trajectories,
    filter_by_preconditions,
    topological_order,
    trajectory_stats,
)

AUTH = "authorize_user"
SHOP = (AUTH, "list_items", "view_item", "buy_item")


def _blueprint(names=SHOP, *, auth=AUTH, server="Shop") -> ServerBlueprint:
    return ServerBlueprint(
        server_name=server,
        description="A test server.",
        core_entity="User",
        peripheral_entities=(),
        relationships=(),
        functions=tuple(
            Function(
                name=name,
                description=f"Does {name}.",
                effect="read",
                is_authorization=name == auth,
                parameters={},
            )
            for name in names
        ),
    )


def _draft(links, nodes=None) -> ToolGraphDraft:
    pairs = [(source, target) for source, target in links]
    if nodes is None:
        nodes = list(dict.fromkeys(end for pair in pairs for end in pair))
    return ToolGraphDraft(
        nodes=nodes,
        links=[LinkDraft(source=source, target=target) for source, target in pairs],
    )


def _graph(nodes, links, root=None) -> ToolGraph:
    return ToolGraph(
        server_name="Shop",
        root=root or nodes[0],
        nodes=tuple(nodes),
        links=tuple(
            ToolLink(source=source, target=target, type="information flow")
            for source, target in links
        ),
    )


def _pairs(graph: ToolGraph) -> list[tuple[str, str]]:
    return [(link.source, link.target) for link in graph.links]


def test_check_graph_draft_rejects_unknown_names_with_a_suggestion():
    """Unknown nodes and endpoints are named once, with the closest tool."""
    draft = _draft(
        [("Authorize", "list_item"), ("list_items", "refund_order")],
        nodes=["Authorize", "list_items", "view_item"],
    )
    assert check_graph_draft(draft, blueprint=_blueprint()) == [
        "'Authorize' is not a tool of Shop; did you mean 'authorize_user'?",
        "'list_item' is not a tool of Shop; did you mean 'list_items'?",
        "'refund_order' is not a tool of Shop.",
        "Use only these tool names: authorize_user, list_items, view_item, buy_item.",
    ]


def test_check_graph_draft_rejects_self_loops_and_a_graph_without_links():
    """A self loop is named; a multi-tool graph with no links is refused."""
    looped = _draft([(AUTH, "list_items"), ("view_item", "view_item")])
    bare = ToolGraphDraft(nodes=list(SHOP), links=[])
    assert check_graph_draft(looped, blueprint=_blueprint()) == [
        "The link 'view_item' -> 'view_item' is a self loop; a tool cannot depend "
        "on itself, so remove it."
    ]
    assert check_graph_draft(bare, blueprint=_blueprint()) == [
        "The graph has no links; link each tool from the tools it depends on."
    ]


def test_graph_checker_turns_problems_into_a_validation_error_for_reasks():
    """Passed as validation context, the checker makes a bad draft fail."""
    data = {"nodes": [AUTH], "links": [{"source": AUTH, "target": "buy_itme"}]}
    context = {"check": graph_checker(_blueprint())}
    with pytest.raises(pydantic.ValidationError, match="did you mean 'buy_item'"):
        ToolGraphDraft.model_validate(data, context=context)
    good = {"nodes": [{"id": AUTH}], "links": [{"source": AUTH, "target": "buy_item"}]}
    assert ToolGraphDraft.model_validate(good, context=context).nodes == [AUTH]


def test_link_draft_maps_type_spellings_and_defaults_unknown_types():
    """Link types are folded to a known type; anything else becomes the default."""
    assert LinkDraft(source="a", target="b", type="State_Dependency").type == (
        "state dependency"
    )
    assert LinkDraft(source="a", target="b", type="storyline-flow").type == (
        "storyline flow"
    )
    assert LinkDraft(source="a", target="b", type="causal").type == "information flow"
    assert LinkDraft(source="a", target="b").type == "information flow"


def test_authorization_tool_requires_exactly_one_authorization_function():
    """The root is the single is_authorization function; none is an error."""
    assert authorization_tool(_blueprint()) == AUTH
    with pytest.raises(ValueError, match="0 authorization functions"):
        authorization_tool(_blueprint(auth="nobody"))


def test_repair_graph_keeps_a_valid_dag_unchanged():
    """A draft that is already a rooted DAG is only reordered."""
    draft = _draft(
        [("list_items", "view_item"), (AUTH, "list_items"), ("view_item", "buy_item")]
    )
    assert repair_graph(draft, blueprint=_blueprint()) == ToolGraph(
        server_name="Shop",
        root=AUTH,
        nodes=SHOP,
        links=(
            ToolLink(source=AUTH, target="list_items", type="information flow"),
            ToolLink(source="list_items", target="view_item", type="information flow"),
            ToolLink(source="view_item", target="buy_item", type="information flow"),
        ),
    )


def test_repair_graph_breaks_a_cycle_and_records_the_dropped_link():
    """The back edge of a DFS from the root is dropped and reported."""
    draft = _draft(
        [
            (AUTH, "list_items"),
            ("list_items", "view_item"),
            ("view_item", "buy_item"),
            ("buy_item", "list_items"),
        ]
    )
    graph = repair_graph(draft, blueprint=_blueprint())
    assert _pairs(graph) == [
        (AUTH, "list_items"),
        ("list_items", "view_item"),
        ("view_item", "buy_item"),
    ]
    assert graph.repairs == (
        "Dropped link 'buy_item' -> 'list_items' to break a cycle.",
    )


def test_repair_graph_links_a_tool_unreachable_from_the_root():
    """Tools nothing leads to, including omitted ones, are linked from the root."""
    draft = _draft([(AUTH, "list_items"), ("view_item", "list_items")])
    graph = repair_graph(draft, blueprint=_blueprint())
    assert graph.links == (
        ToolLink(source=AUTH, target="list_items", type="information flow"),
        ToolLink(source=AUTH, target="view_item", type="state dependency"),
        ToolLink(source=AUTH, target="buy_item", type="state dependency"),
        ToolLink(source="view_item", target="list_items", type="information flow"),
    )
    assert graph.repairs == (
        "Added tool 'buy_item', which the graph left out.",
        "Linked 'view_item' from the root 'authorize_user', as no link led to it.",
        "Linked 'buy_item' from the root 'authorize_user', as no link led to it.",
    )


def test_repair_graph_removes_a_link_into_the_root():
    """The authorization tool keeps in-degree zero."""
    draft = _draft([(AUTH, "list_items"), ("list_items", AUTH)])
    graph = repair_graph(draft, blueprint=_blueprint(SHOP[:2]))
    assert _pairs(graph) == [(AUTH, "list_items")]
    assert graph.repairs == (
        "Dropped link 'list_items' -> 'authorize_user' into the root 'authorize_user'.",
    )


def test_repair_graph_drops_unknown_names_and_self_loops():
    """Unknown nodes, links naming them and self loops are dropped and reported."""
    draft = _draft(
        [(AUTH, "Authorize"), (AUTH, "list_items"), ("list_items", "list_items")],
        nodes=["Authorize", AUTH, "list_items"],
    )
    graph = repair_graph(draft, blueprint=_blueprint(SHOP[:2]))
    assert _pairs(graph) == [(AUTH, "list_items")]
    assert graph.repairs == (
        "Dropped node 'Authorize', which is not a tool of Shop.",
        "Dropped link 'authorize_user' -> 'Authorize', which names an unknown tool.",
        "Dropped self loop 'list_items' -> 'list_items'.",
    )


def test_repair_graph_breaks_a_cycle_unreachable_from_the_root():
    """A cycle nothing leads to is cut in blueprint order, then hung off the root."""
    draft = _draft([("list_items", "view_item"), ("view_item", "list_items")])
    graph = repair_graph(draft, blueprint=_blueprint(SHOP[:3]))
    assert _pairs(graph) == [(AUTH, "list_items"), ("list_items", "view_item")]
    assert graph.repairs == (
        "Added tool 'authorize_user', which the graph left out.",
        "Dropped link 'view_item' -> 'list_items' to break a cycle.",
        "Linked 'list_items' from the root 'authorize_user', as no link led to it.",
    )


def test_repair_graph_roots_a_dag_at_an_authorization_tool_listed_later():
    """The root need not be the first function; it still starts every path."""
    names = ("list_items", AUTH, "buy_item")
    draft = _draft([("list_items", "buy_item"), ("buy_item", AUTH)])
    graph = repair_graph(draft, blueprint=_blueprint(names))
    assert graph.root == AUTH
    assert _pairs(graph) == [("list_items", "buy_item"), (AUTH, "list_items")]
    assert topological_order(graph) == (AUTH, "list_items", "buy_item")


def test_repair_graph_always_yields_a_dag_with_the_root_as_only_source():
    """Random drafts repair to acyclic graphs where every tool is reachable."""
    names = (AUTH, *(f"tool_{index}" for index in range(9)))
    blueprint = _blueprint(names)
    rng = random.Random(8)
    for _ in range(200):
        links = [
            (rng.choice(names), rng.choice([*names, "ghost"]))
            for _ in range(rng.randrange(0, 25))
        ]
        graph = repair_graph(_draft(links), blueprint=blueprint)
        order = topological_order(graph)
        assert order[0] == AUTH and sorted(order) == sorted(names)
        targets = {target for _, target in _pairs(graph)}
        assert set(names) - targets == {AUTH}
        assert all(ancestors(graph)[name] >= {AUTH} for name in names[1:])


def test_topological_order_breaks_ties_by_node_order_and_rejects_cycles():
    """Independent nodes keep node order; a cycle is an error naming its nodes."""
    graph = _graph(["r", "b", "a", "c"], [("r", "c"), ("r", "a"), ("b", "a")])
    assert topological_order(graph) == ("r", "b", "a", "c")
    cyclic = _graph(["r", "a", "b"], [("r", "a"), ("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="cycle among: a, b"):
        topological_order(cyclic)


def test_back_edges_cut_every_cycle_in_start_order():
    """Back edges are found from the first start, successors in start order."""
    pairs = [("a", "b"), ("b", "c"), ("c", "a"), ("b", "a"), ("d", "d")]
    assert back_edges(["a", "b", "c", "d"], pairs) == [
        ("b", "a"),
        ("c", "a"),
        ("d", "d"),
    ]


def test_enumerate_trajectories_honours_lengths_and_includes_prefixes():
    """Paths from the root of every allowed length are returned, shortest first."""
    graph = _graph(
        ["r", "a", "b", "c"], [("r", "a"), ("a", "b"), ("r", "c"), ("b", "c")]
    )
    assert enumerate_trajectories(graph, min_length=2, max_length=3) == (
        ("r", "a"),
        ("r", "c"),
        ("r", "a", "b"),
    )
    assert enumerate_trajectories(graph, min_length=1, max_length=4) == (
        ("r",),
        ("r", "a"),
        ("r", "c"),
        ("r", "a", "b"),
        ("r", "a", "b", "c"),
    )
    assert enumerate_trajectories(graph, min_length=4, max_length=4) == (
        ("r", "a", "b", "c"),
    )


def test_enumerate_trajectories_orders_ties_by_blueprint_not_alphabet():
    """Equal-length paths follow node (blueprint) order, not name order."""
    graph = _graph(["r", "zeta", "alpha"], [("r", "alpha"), ("r", "zeta")])
    assert enumerate_trajectories(graph, min_length=2, max_length=2) == (
        ("r", "zeta"),
        ("r", "alpha"),
    )


def test_enumerate_trajectories_yields_paths_in_a_deep_chain():
    """A chain longer than max_length still yields its bounded prefixes."""
    nodes = [f"t{index}" for index in range(8)]
    graph = _graph(nodes, list(zip(nodes, nodes[1:], strict=False)))
    assert enumerate_trajectories(graph, min_length=3, max_length=5) == (
        ("t0", "t1", "t2"),
        ("t0", "t1", "t2", "t3"),
        ("t0", "t1", "t2", "t3", "t4"),
    )


def test_enumerate_trajectories_caps_paths_after_ordering():
    """max_paths keeps the first paths in the deterministic order."""
    graph = _graph(["r", "a", "b"], [("r", "a"), ("r", "b"), ("a", "b")])
    assert enumerate_trajectories(graph, min_length=2, max_length=3, max_paths=2) == (
        ("r", "a"),
        ("r", "b"),
    )
    assert enumerate_trajectories(graph, min_length=2, max_length=3, max_paths=0) == ()


def test_enumerate_trajectories_rejects_bad_lengths():
    """Lengths below one or inverted bounds are configuration errors."""
    graph = _graph(["r"], [])
    with pytest.raises(ValueError, match="min_length"):
        enumerate_trajectories(graph, min_length=0, max_length=3)
    with pytest.raises(ValueError, match="min_length"):
        enumerate_trajectories(graph, min_length=4, max_length=3)


def test_filter_by_preconditions_keeps_paths_with_required_tools_earlier():
    """A tool is valid only after every tool it requires."""
    paths = [("r", "a", "b"), ("r", "b"), ("r", "b", "a"), ("r", "a")]
    assert filter_by_preconditions(paths, {"b": ("a",), "a": ()}) == (
        ("r", "a", "b"),
        ("r", "a"),
    )


def test_enumerating_with_preconditions_equals_filtering_then_capping():
    """Pruning during enumeration matches filtering the full list, then capping."""
    nodes = ["r", "a", "b", "c", "d"]
    links = [(x, y) for i, x in enumerate(nodes) for y in nodes[i + 1 :]]
    graph = _graph(nodes, links)
    required = {"c": ("a",), "d": ("b", "c")}
    everything = enumerate_trajectories(graph, min_length=2, max_length=5)
    valid = filter_by_preconditions(everything, required)
    pruned = enumerate_trajectories(
        graph, min_length=2, max_length=5, max_paths=4, preconditions=required
    )
    assert len(everything) == 15 and len(valid) == 6
    assert pruned == valid[:4]


def test_check_preconditions_names_unknown_self_root_and_cyclic_requirements():
    """Every broken precondition is reported as a sentence for the model."""
    draft = PreconditionsDraft(
        preconditions={
            AUTH: ["list_items"],
            "view_item": ["view_item", "list_item", "buy_item"],
            "buy_item": ["view_item"],
            "list_items": ["buy_item"],
        }
    )
    assert check_preconditions(draft, blueprint=_blueprint()) == [
        "'list_item' is not a tool of Shop; did you mean 'list_items'?",
        "Use only these tool names: authorize_user, list_items, view_item, buy_item.",
        "'view_item' lists itself as a precondition; a tool cannot require itself.",
        "'authorize_user' is the authorization tool and always runs first, so it "
        "cannot require other tools.",
        "'view_item' cannot require 'buy_item', because 'buy_item' already "
        "requires 'view_item' directly or through other tools.",
    ]


def test_preconditions_checker_accepts_a_valid_draft():
    """Known, acyclic requirements pass validation with the checker."""
    data = {"preconditions": {"buy_item": [AUTH, "view_item"], AUTH: []}}
    context = {"check": preconditions_checker(_blueprint())}
    draft = PreconditionsDraft.model_validate(data, context=context)
    assert draft.preconditions["buy_item"] == [AUTH, "view_item"]


def test_canonical_preconditions_refuses_unknown_names_instead_of_dropping():
    """A requirement naming no tool is an error, never a silent invalidation."""
    draft = PreconditionsDraft(preconditions={"buy_item": ["checkout"]})
    with pytest.raises(ValueError, match="'checkout' is not a tool of Shop"):
        canonical_preconditions(draft, blueprint=_blueprint())


def test_build_tool_graph_filters_trajectories_by_preconditions():
    """The assembled graph has every tool keyed and only valid trajectories."""
    draft = _draft(
        [
            (AUTH, "list_items"),
            (AUTH, "view_item"),
            ("list_items", "view_item"),
            ("view_item", "buy_item"),
        ]
    )
    required = PreconditionsDraft(
        preconditions={"buy_item": ["list_items", "view_item", "view_item"]}
    )
    graph = build_tool_graph(
        draft,
        required,
        blueprint=_blueprint(),
        min_length=2,
        max_length=4,
        max_paths=None,
    )
    assert graph.preconditions == {
        AUTH: (),
        "list_items": (),
        "view_item": (),
        "buy_item": ("list_items", "view_item"),
    }
    assert graph.preconditions_given is True
    assert graph.trajectories == (
        (AUTH, "list_items"),
        (AUTH, "view_item"),
        (AUTH, "list_items", "view_item"),
        (AUTH, "list_items", "view_item", "buy_item"),
    )
    assert graph.repairs == ()


def test_build_tool_graph_reports_a_precondition_no_path_can_satisfy():
    """A required tool that is never an ancestor is reported in repairs."""
    draft = _draft([(AUTH, "list_items"), (AUTH, "buy_item")])
    required = PreconditionsDraft(preconditions={"buy_item": ["list_items"]})
    graph = build_tool_graph(
        draft,
        required,
        blueprint=_blueprint(SHOP[:2] + ("buy_item",)),
        min_length=2,
        max_length=3,
        max_paths=None,
    )
    assert graph.trajectories == ((AUTH, "list_items"),)
    assert graph.repairs == (
        "'buy_item' requires 'list_items', which no path from the root passes "
        "before it, so no trajectory includes 'buy_item'.",
    )


def test_build_tool_graph_without_preconditions_says_it_did_not_filter():
    """Absent preconditions are flagged and recorded, not silently ignored."""
    draft = _draft([(AUTH, "list_items"), ("list_items", "buy_item")])
    graph = build_tool_graph(
        draft,
        None,
        blueprint=_blueprint((AUTH, "list_items", "buy_item")),
        min_length=2,
        max_length=3,
        max_paths=None,
    )
    assert graph.preconditions == {}
    assert graph.preconditions_given is False
    assert graph.trajectories == (
        (AUTH, "list_items"),
        (AUTH, "list_items", "buy_item"),
    )
    assert graph.repairs == (
        "No tool preconditions were given, so trajectories were not filtered by them.",
    )


def test_build_tool_graph_is_deterministic_under_reordered_drafts():
    """The same links in any order give an identical graph and JSON."""
    links = [
        (AUTH, "list_items"),
        ("list_items", "view_item"),
        ("view_item", "list_items"),
        ("view_item", "buy_item"),
    ]
    required = PreconditionsDraft(preconditions={"buy_item": ["view_item"]})
    kwargs = {"blueprint": _blueprint(), "min_length": 2, "max_length": 4}
    first = build_tool_graph(_draft(links), required, max_paths=None, **kwargs)
    again = build_tool_graph(_draft(links), required, max_paths=None, **kwargs)
    shuffled = build_tool_graph(
        _draft(links[::-1], nodes=list(SHOP[::-1])),
        required,
        max_paths=None,
        **kwargs,
    )
    assert first == again == shuffled
    assert first.model_dump_json() == shuffled.model_dump_json()
    assert first.repairs == (
        "Dropped link 'view_item' -> 'list_items' to break a cycle.",
    )


def test_tool_graph_round_trips_through_json():
    """A built graph survives serialisation unchanged."""
    draft = _draft([(AUTH, "list_items"), ("list_items", "buy_item")])
    graph = build_tool_graph(
        draft,
        None,
        blueprint=_blueprint(),
        min_length=2,
        max_length=3,
        max_paths=None,
    )
    assert ToolGraph.model_validate_json(graph.model_dump_json()) == graph


def test_tool_graph_export_has_the_reference_node_link_shape():
    """The export carries the reference keys plus root, flag and repairs."""
    blueprint = _blueprint((AUTH, "list_items", "buy_item"))
    draft = ToolGraphDraft(
        nodes=[AUTH, "list_items", "buy_item"],
        links=[
            LinkDraft(source=AUTH, target="list_items", type="state dependency"),
            LinkDraft(source="list_items", target="buy_item"),
        ],
    )
    required = PreconditionsDraft(preconditions={"buy_item": [AUTH]})
    graph = build_tool_graph(
        draft,
        required,
        blueprint=blueprint,
        min_length=2,
        max_length=3,
        max_paths=None,
    )
    assert tool_graph_export(graph) == {
        "directed": True,
        "multigraph": False,
        "nodes": [{"id": AUTH}, {"id": "list_items"}, {"id": "buy_item"}],
        "links": [
            {"source": AUTH, "target": "list_items", "type": "state dependency"},
            {"source": "list_items", "target": "buy_item", "type": "information flow"},
        ],
        "tool_preconditions": {AUTH: [], "list_items": [], "buy_item": [AUTH]},
        "valid_trajectories": [
            [AUTH, "list_items"],
            [AUTH, "list_items", "buy_item"],
        ],
        "root": AUTH,
        "preconditions_given": True,
        "repairs": [],
    }


def test_trajectory_stats_count_trajectories_by_length():
    """Stats give totals and an ascending per-length histogram."""
    draft = _draft(
        [(AUTH, "list_items"), ("list_items", "view_item"), (AUTH, "buy_item")]
    )
    graph = build_tool_graph(
        draft,
        None,
        blueprint=_blueprint(),
        min_length=2,
        max_length=3,
        max_paths=None,
    )
    assert trajectory_stats(graph) == {
        "server_name": "Shop",
        "nodes": 4,
        "links": 3,
        "trajectories": 3,
        "by_length": {2: 2, 3: 1},
        "preconditions_given": False,
        "repairs": 1,
    }

"""s03 entity graph logic: takes the `EntityCatalogue`, `RelationBatchDraft`s and
`RelationBatch`es; returns the (person, batch) questions to ask, problem sentences
for re-asks, canonical `RelationBatch`es, the person-centred `EntityGraph`, its
NetworkX node-link export and a person's neighbours; no side effects."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from schemas.entity import (
    EntityCatalogue,
    EntityGraph,
    GraphEdge,
    GraphNode,
    RelationBatch,
    RelationBatchDraft,
)
from tasks.core.naming import name_fold


def person_batches(
    catalogue: EntityCatalogue, batch_size: int
) -> list[tuple[str, int, list[str]]]:
    """The (person, batch_index, candidate names) items to ask the model about.

    For each person entity in name order, all other entities (persons included)
    in name order are split into consecutive batches of `batch_size`.

    Args:
        catalogue: The entity catalogue.
        batch_size: Entities offered per question.

    Returns:
        One tuple per batch; none for a person when it is the only entity.

    Raises:
        ValueError: If `batch_size` is below 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    names = sorted(catalogue.entities)
    items: list[tuple[str, int, list[str]]] = []
    for person in names:
        if not catalogue.entities[person].is_person:
            continue
        others = [name for name in names if name != person]
        for index, start in enumerate(range(0, len(others), batch_size)):
            items.append((person, index, others[start : start + batch_size]))
    return items


def check_relations(
    draft: RelationBatchDraft, *, person: str, candidates: Sequence[str]
) -> list[str]:
    """Problems with the model's choice from one batch, as re-ask sentences.

    Names are matched to the offered candidates ignoring case and separators.

    Args:
        draft: The model's answer.
        person: The person entity the question was about.
        candidates: The entity names offered in the batch.

    Returns:
        Problem sentences; empty when every name is an offered candidate, the
        person itself is absent and nothing is repeated.
    """
    offered = {name_fold(candidate) for candidate in candidates}
    problems: list[str] = []
    unknown: list[str] = []
    seen: set[str] = set()
    for raw in draft.related:
        fold = name_fold(raw)
        if fold == name_fold(person):
            problems.append(
                f"'{raw}' is the person entity itself; list only entities from the "
                "offered batch."
            )
        elif fold not in offered:
            unknown.append(raw)
        elif fold in seen:
            problems.append(f"'{raw}' is listed more than once; list each entity once.")
        seen.add(fold)
    if unknown:
        quoted = ", ".join(f"'{name}'" for name in unknown)
        verb = "was" if len(unknown) == 1 else "were"
        problems.append(
            f"{quoted} {verb} not offered; choose only from: {', '.join(candidates)}."
        )
    return problems


def relations_checker(
    *, person: str, candidates: Sequence[str]
) -> Callable[[RelationBatchDraft], list[str]]:
    """The `check` function for `RelationBatchDraft` validation context."""
    offered = tuple(candidates)
    return lambda draft: check_relations(draft, person=person, candidates=offered)


def relation_batch(
    draft: RelationBatchDraft,
    *,
    person: str,
    batch_index: int,
    candidates: Sequence[str],
) -> RelationBatch:
    """Canonicalise the model's choice from one batch.

    Names are mapped to the candidates' spelling; names not offered, the person
    itself and repeats are dropped.

    Args:
        draft: The model's answer.
        person: The person entity the question was about.
        batch_index: Position of the batch among the person's batches.
        candidates: The entity names offered in the batch.

    Returns:
        The batch with its related entities in answer order.
    """
    spelling = {name_fold(candidate): candidate for candidate in candidates}
    spelling.pop(name_fold(person), None)
    related = [
        spelling[fold] for raw in draft.related if (fold := name_fold(raw)) in spelling
    ]
    return RelationBatch(
        person=person,
        batch_index=batch_index,
        candidates=tuple(candidates),
        related=tuple(dict.fromkeys(related)),
    )


def build_graph(
    catalogue: EntityCatalogue, batches: Sequence[RelationBatch]
) -> EntityGraph:
    """Build the person-centred entity graph.

    Every entity is a node (name order). Each batch contributes edges from its
    person to the related entities it was offered, in (person, batch_index)
    order, without repeats and without self loops, so the result does not depend
    on the order in which batches finished.

    Args:
        catalogue: The entity catalogue.
        batches: The canonical relation batches of every person.

    Returns:
        The graph.

    Raises:
        ValueError: If a batch's person is not in the catalogue.
    """
    nodes = tuple(
        GraphNode(
            id=name,
            is_person=entity.is_person,
            attributes=tuple(entity.attributes),
            description=entity.description,
        )
        for name, entity in sorted(catalogue.entities.items())
    )
    edges: list[GraphEdge] = []
    seen: set[tuple[str, str]] = set()
    for batch in sorted(batches, key=lambda item: (item.person, item.batch_index)):
        if batch.person not in catalogue.entities:
            raise ValueError(f"relation batch for unknown entity '{batch.person}'")
        offered = set(batch.candidates) & set(catalogue.entities)
        for target in batch.related:
            pair = (batch.person, target)
            if target == batch.person or target not in offered or pair in seen:
                continue
            seen.add(pair)
            edges.append(GraphEdge(source=batch.person, target=target))
    return EntityGraph(nodes=nodes, links=tuple(edges))


def graph_export(graph: EntityGraph) -> dict[str, object]:
    """The graph in the NetworkX node-link shape of `entity_graph.json`.

    Args:
        graph: The entity graph.

    Returns:
        `{"directed": True, "multigraph": False, "graph": {}, "nodes": [...],
        "links": [...]}` with node attribute names as lists.
    """
    return {
        "directed": True,
        "multigraph": False,
        "graph": {},
        "nodes": [
            {
                "id": node.id,
                "is_person": node.is_person,
                "attributes": list(node.attributes),
                "description": node.description,
            }
            for node in graph.nodes
        ],
        "links": [link.model_dump(mode="json") for link in graph.links],
    }


def neighbours(graph: EntityGraph, person: str) -> list[str]:
    """Entities linked to `person` in either direction.

    Args:
        graph: The entity graph.
        person: An entity name.

    Returns:
        Linked entities that are graph nodes, in link order, without repeats and
        without the person itself.
    """
    known = {node.id for node in graph.nodes}
    found: list[str] = []
    for link in graph.links:
        if link.source == person:
            found.append(link.target)
        if link.target == person:
            found.append(link.source)
    return [name for name in dict.fromkeys(found) if name in known and name != person]

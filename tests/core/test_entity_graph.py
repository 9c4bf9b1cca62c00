"""Tests for s03 entity graph logic."""

import pydantic
import pytest

from schemas.entity import (
    EntityGraph,
    GraphEdge,
    GraphNode,
    RelationBatch,
    RelationBatchDraft,
)
from tasks.core.entity_graph import (
    build_graph,
    check_relations,
    graph_export,
    neighbours,
    person_batches,
    relation_batch,
    relations_checker,
)


def _batch(person, index, candidates, related):
    return RelationBatch(
        person=person,
        batch_index=index,
        candidates=tuple(candidates),
        related=tuple(related),
    )


def test_person_batches_split_other_entities_per_person_in_name_order(catalogue):
    """Each person is offered every other entity, persons included, in batches."""
    assert person_batches(catalogue, 2) == [
        ("Patient", 0, ["BankAccount", "Clinic"]),
        ("Patient", 1, ["Physician"]),
        ("Physician", 0, ["BankAccount", "Clinic"]),
        ("Physician", 1, ["Patient"]),
    ]


def test_person_batches_reject_a_zero_batch_size(catalogue):
    """A batch size below one is a configuration error."""
    with pytest.raises(ValueError, match="batch_size"):
        person_batches(catalogue, 0)


def test_check_relations_accepts_offered_names_in_any_spelling():
    """Case and separators do not matter when matching offered names."""
    draft = RelationBatchDraft(related=["clinic", "bank account"])
    assert (
        check_relations(draft, person="Patient", candidates=["BankAccount", "Clinic"])
        == []
    )


def test_check_relations_names_unoffered_self_and_repeated_entities():
    """Names outside the batch, the person itself and repeats are reported."""
    draft = RelationBatchDraft(
        related=["Clinic", "Patient", "Hospital", "clinic", "Ward"]
    )
    assert check_relations(
        draft, person="Patient", candidates=["BankAccount", "Clinic"]
    ) == [
        "'Patient' is the person entity itself; list only entities from the offered "
        "batch.",
        "'clinic' is listed more than once; list each entity once.",
        "'Hospital', 'Ward' were not offered; choose only from: BankAccount, Clinic.",
    ]


def test_relations_checker_makes_validation_raise():
    """The checker in the validation context turns problems into a re-ask."""
    checker = relations_checker(person="Patient", candidates=["Clinic"])
    with pytest.raises(pydantic.ValidationError, match="'Ward' was not offered"):
        RelationBatchDraft.model_validate(
            {"related": ["Ward"]}, context={"check": checker}
        )


def test_relation_batch_keeps_only_offered_names_in_canonical_spelling():
    """Unknown names, the person and repeats are dropped."""
    draft = RelationBatchDraft(
        related=["clinic", "Patient", "Ward", "CLINIC", "bank_account"]
    )
    assert relation_batch(
        draft, person="Patient", batch_index=1, candidates=["BankAccount", "Clinic"]
    ) == _batch("Patient", 1, ["BankAccount", "Clinic"], ["Clinic", "BankAccount"])


def test_build_graph_has_offered_edges_only_and_no_self_loops(catalogue):
    """Edges come from offered candidates, without self loops or repeats."""
    batches = [
        _batch("Physician", 0, ["Clinic", "Physician"], ["Physician", "Clinic"]),
        _batch("Patient", 1, ["Physician"], ["Physician", "Clinic"]),
        _batch("Patient", 0, ["BankAccount", "Clinic"], ["Clinic", "Clinic"]),
    ]
    graph = build_graph(catalogue, batches)
    assert graph.links == (
        GraphEdge(source="Patient", target="Clinic"),
        GraphEdge(source="Patient", target="Physician"),
        GraphEdge(source="Physician", target="Clinic"),
    )
    assert graph.nodes[2] == GraphNode(
        id="Patient",
        is_person=True,
        attributes=("patient_id", "full_name"),
        description="A Patient",
    )
    assert [node.id for node in graph.nodes] == [
        "BankAccount",
        "Clinic",
        "Patient",
        "Physician",
    ]


def test_build_graph_rejects_batch_for_unknown_person(catalogue):
    """A batch about an entity not in the catalogue is a bug upstream."""
    with pytest.raises(ValueError, match="unknown entity 'Nurse'"):
        build_graph(catalogue, [_batch("Nurse", 0, ["Clinic"], ["Clinic"])])


def test_graph_export_uses_node_link_shape():
    """The export matches NetworkX node-link data."""
    graph = EntityGraph(
        nodes=(
            GraphNode(
                id="Clinic", is_person=False, attributes=("clinic_id",), description="c"
            ),
            GraphNode(id="Patient", is_person=True, attributes=(), description="p"),
        ),
        links=(GraphEdge(source="Patient", target="Clinic"),),
    )
    assert graph_export(graph) == {
        "directed": True,
        "multigraph": False,
        "graph": {},
        "nodes": [
            {
                "id": "Clinic",
                "is_person": False,
                "attributes": ["clinic_id"],
                "description": "c",
            },
            {"id": "Patient", "is_person": True, "attributes": [], "description": "p"},
        ],
        "links": [
            {
                "source": "Patient",
                "target": "Clinic",
                "relationship": "related_to",
                "description": "",
            }
        ],
    }


def test_neighbours_follow_both_directions_without_repeats(catalogue):
    """Incoming and outgoing links count; unknown nodes are skipped."""
    graph = build_graph(
        catalogue,
        [
            _batch("Patient", 0, ["Clinic", "Physician"], ["Physician", "Clinic"]),
            _batch("Physician", 0, ["Patient", "Clinic"], ["Patient"]),
        ],
    )
    stray = graph.model_copy(
        update={"links": (*graph.links, GraphEdge(source="Patient", target="Ghost"))}
    )
    assert neighbours(stray, "Patient") == ["Physician", "Clinic"]
    assert neighbours(stray, "Clinic") == ["Patient"]

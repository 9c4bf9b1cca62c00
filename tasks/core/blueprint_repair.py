"""s04 deterministic blueprint repair: takes a `BlueprintDraft`, its
`BlueprintOutline` and the `EntityCatalogue`; returns a new, repaired draft and
exposes the naming rules so the checks can report what repair could not do; no
side effects. Repair never merges or drops a column: a column holding an entity's
key is renamed to the canonical key only when its name spells that key, and names
that would collide are left as written so the collision is reported (reference
defect 18)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.base import SLUG_PATTERN
from schemas.blueprint import (
    BlueprintDraft,
    BlueprintOutline,
    ColumnDraft,
    FunctionDraft,
    ParameterDraft,
    RelationshipDraft,
)
from schemas.entity import Entity, EntityCatalogue
from tasks.core.entities import array_item_type
from tasks.core.naming import key_variants, name_fold, to_pascal, to_snake

SYSTEM_GENERATED = "system_generated"
RANDOM_VALUE = "Random"
RESERVED_NAME = "session_id"
RESERVED_REPLACEMENT = "param_session_id"


@dataclass(frozen=True)
class BlueprintScope:
    """The entities a blueprint may use, and how model spellings resolve to them.

    Attributes:
        catalogue: Every catalogue entity by canonical name.
        members: The blueprint's entities, core first, spelt as in the catalogue
            when known (unknown names are kept as written).
        spelling: `name_fold` of each catalogue name -> canonical name.
        keys: Lower-cased spelling of an entity key -> canonical key; the
            blueprint's own entities take precedence.
    """

    catalogue: dict[str, Entity]
    members: tuple[str, ...]
    spelling: dict[str, str]
    keys: dict[str, str]

    @property
    def core(self) -> Entity | None:
        """The core entity, if it is in the catalogue."""
        return self.catalogue.get(self.members[0])


def blueprint_scope(
    catalogue: EntityCatalogue, core: str, peripherals: Sequence[str]
) -> BlueprintScope:
    """Build the resolution scope of one blueprint.

    Args:
        catalogue: The entity catalogue.
        core: The core entity name.
        peripherals: The peripheral entity names.

    Returns:
        The scope.
    """
    spelling = {name_fold(name): name for name in catalogue.entities}
    members = (spelling.get(name_fold(name), name) for name in (core, *peripherals))
    ordered = tuple(dict.fromkeys(members))
    keys: dict[str, str] = {}
    for name in [*ordered, *sorted(catalogue.entities)]:
        entity = catalogue.entities.get(name)
        if entity is None:
            continue
        for spelt in _key_spellings(entity):
            keys.setdefault(spelt, entity.primary_key)
    return BlueprintScope(dict(catalogue.entities), ordered, spelling, keys)


def _key_spellings(entity: Entity) -> set[str]:
    variants = {name.lower() for name in key_variants(entity.name)}
    return variants | {entity.primary_key.lower()}


def _is_key_of(name: str, entity: Entity) -> bool:
    spellings = _key_spellings(entity)
    return name.strip().lower() in spellings or to_snake(name) in spellings


def _snake_name(name: str) -> str:
    return name if SLUG_PATTERN.match(name) else (to_snake(name) or name)


def relationship_key(name: str) -> str:
    """A relationship's primary-key column ("PatientVisit" -> "patient_visit_id")."""
    return f"{to_snake(name)}_id"


def resolve_value(raw: str, scope: BlueprintScope) -> str:
    """Normalise a column's `value_from_entity`.

    Args:
        raw: As written, e.g. "patient", "BankAccount.BankAccount_id",
            "System Generated".
        scope: The blueprint's scope.

    Returns:
        "system_generated", "Random", or "Entity.attribute" with the entity and
        attribute spelt as in the catalogue (a bare entity, a spelling of its key
        or "id" mean its primary key); anything unresolved is returned stripped.
    """
    text = raw.strip()
    marker = to_snake(text)
    if marker in ("system_generated", "system"):
        return SYSTEM_GENERATED
    if marker == "random":
        return RANDOM_VALUE
    head, _, tail = text.partition(".")
    name = scope.spelling.get(name_fold(head)) if head.strip() else None
    if name is None:
        return text
    entity = scope.catalogue[name]
    snake = to_snake(tail)
    bare_id = snake == "id" and "id" not in entity.attributes
    if not snake or bare_id or _is_key_of(tail, entity):
        return f"{name}.{entity.primary_key}"
    for attribute in entity.attributes:
        if attribute == snake or attribute.lower() == tail.strip().lower():
            return f"{name}.{attribute}"
    return f"{name}.{snake}"


def referenced_entity(value: str, scope: BlueprintScope) -> Entity | None:
    """The entity whose primary key a resolved `value_from_entity` names, if any."""
    head, dot, tail = value.partition(".")
    entity = scope.catalogue.get(head)
    if entity is not None and dot and tail == entity.primary_key:
        return entity
    return None


def column_target(
    name: str, value: str, relationship: str, scope: BlueprintScope
) -> str:
    """The name repair gives a column, before collisions are considered.

    Args:
        name: The column name as written.
        value: Its resolved `value_from_entity`.
        relationship: The (PascalCased) relationship name.
        scope: The blueprint's scope.

    Returns:
        The entity key when the column holds that key and its name spells it; the
        relationship key for a generated column called "id"; otherwise the
        snake_case name; `session_id` becomes `param_session_id`.
    """
    text = name.strip()
    target = _snake_name(text)
    referenced = referenced_entity(value, scope)
    if referenced is not None and _is_key_of(text, referenced):
        target = referenced.primary_key
    elif value == SYSTEM_GENERATED and target == "id":
        target = relationship_key(relationship)
    return RESERVED_REPLACEMENT if target == RESERVED_NAME else target


def parameter_target(name: str, scope: BlueprintScope) -> str:
    """The name repair gives a function parameter, before collisions.

    Args:
        name: The parameter name as written.
        scope: The blueprint's scope.

    Returns:
        The canonical entity key when the name spells one ("bankaccount_id" ->
        "bank_account_id"), otherwise the snake_case name; `session_id` becomes
        `param_session_id`.
    """
    text = name.strip()
    key = scope.keys.get(text.lower()) or scope.keys.get(to_snake(text))
    target = key or _snake_name(text)
    return RESERVED_REPLACEMENT if target == RESERVED_NAME else target


def rename_unique(originals: Sequence[str], targets: Sequence[str]) -> list[str]:
    """Apply renames, except that names colliding on a target stay as written.

    Args:
        originals: Names as written.
        targets: The name repair would give each.

    Returns:
        The new names; the check then reports the collisions by original name.
    """
    counts = Counter(targets)
    pairs = zip(originals, targets, strict=True)
    return [target if counts[target] == 1 else raw for raw, target in pairs]


def normalize_blueprint(
    draft: BlueprintDraft, *, outline: BlueprintOutline, catalogue: EntityCatalogue
) -> BlueprintDraft:
    """Repair a drafted blueprint deterministically (idempotent).

    Server name PascalCased (`{Core}Manager` if empty); core and peripherals taken
    from the outline; entity names in `value_from_entity` and `legal_accessor`
    spelt as in the catalogue; a bare `Entity` value becomes `Entity.<key>`;
    columns holding an entity key renamed to it only when their name spells that
    key; parameters spelling an entity key renamed to it; `session_id` renamed to
    `param_session_id`; other column and parameter names snake_cased, relationship
    names PascalCased. Names that would collide stay as written.

    Args:
        draft: The model's blueprint.
        outline: The outline it was drafted from.
        catalogue: The entity catalogue.

    Returns:
        A new draft; the input is not modified.
    """
    scope = blueprint_scope(catalogue, outline.core_entity, outline.peripheral_entities)
    server = to_pascal(draft.MCP_server_name) or to_pascal(outline.server_name)
    originals = [relationship.name.strip() for relationship in draft.relationships]
    names = rename_unique(originals, [to_pascal(raw) or raw for raw in originals])
    return BlueprintDraft(
        MCP_server_name=server or f"{outline.core_entity}Manager",
        description=draft.description.strip(),
        core_entity=outline.core_entity,
        peripheral_entities=list(outline.peripheral_entities),
        relationships=[
            _normalize_relationship(relationship, name, scope)
            for relationship, name in zip(draft.relationships, names, strict=True)
        ],
        functions=[
            _normalize_function(function, scope) for function in draft.functions
        ],
    )


def _normalize_relationship(
    relationship: RelationshipDraft, name: str, scope: BlueprintScope
) -> RelationshipDraft:
    values = [
        resolve_value(c.value_from_entity, scope) for c in relationship.attributes
    ]
    originals = [column.name.strip() for column in relationship.attributes]
    targets = [
        column_target(raw, value, name, scope)
        for raw, value in zip(originals, values, strict=True)
    ]
    columns: list[ColumnDraft] = [
        column.model_copy(update={"name": new, "value_from_entity": value})
        for column, new, value in zip(
            relationship.attributes,
            rename_unique(originals, targets),
            values,
            strict=True,
        )
    ]
    return relationship.model_copy(update={"name": name, "attributes": columns})


def _normalize_function(
    function: FunctionDraft, scope: BlueprintScope
) -> FunctionDraft:
    originals = [parameter.name.strip() for parameter in function.parameters]
    targets = [parameter_target(raw, scope) for raw in originals]
    parameters = [
        _normalize_parameter(parameter, new)
        for parameter, new in zip(
            function.parameters, rename_unique(originals, targets), strict=True
        )
    ]
    accessors = (raw.strip() for raw in function.legal_accessor if raw.strip())
    legal = [scope.spelling.get(name_fold(raw), raw) for raw in accessors]
    return function.model_copy(
        update={
            "name": function.name.strip(),
            "legal_accessor": list(dict.fromkeys(legal)),
            "parameters": parameters,
        }
    )


def _normalize_parameter(parameter: ParameterDraft, name: str) -> ParameterDraft:
    update: dict[str, object] = {"name": name}
    inner = array_item_type(parameter.type)
    if inner is not None:
        update["type"] = "array"
        update["items_type"] = parameter.items_type or inner
    return parameter.model_copy(update=update)

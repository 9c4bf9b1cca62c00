"""s04 blueprint checks: takes a repaired `BlueprintDraft`, its `BlueprintOutline`,
the `EntityCatalogue` and `BlueprintConfig` limits; returns problem sentences
naming the relationship, column, function or parameter to change, sent back to the
model verbatim as the re-ask; no side effects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from schemas.base import (
    NAME_MAX_LENGTH,
    PASCAL_PATTERN,
    SLUG_PATTERN,
    TOOL_NAME_MAX_LENGTH,
    TOOL_NAME_PATTERN,
)
from schemas.blueprint import (
    BlueprintDraft,
    BlueprintOutline,
    ColumnDraft,
    FunctionDraft,
    ParameterDraft,
    RelationshipDraft,
)
from schemas.config import BlueprintConfig
from schemas.entity import EntityCatalogue
from tasks.core.blueprint_repair import (
    RANDOM_VALUE,
    SYSTEM_GENERATED,
    BlueprintScope,
    blueprint_scope,
    column_target,
    normalize_blueprint,
    parameter_target,
    relationship_key,
    resolve_value,
)
from tasks.core.entities import ATTRIBUTE_TYPES, attribute_type, enum_values
from tasks.core.naming import entity_key, to_pascal

MAX_TOOL_NAME = TOOL_NAME_MAX_LENGTH
MAX_NAME = NAME_MAX_LENGTH
ITEM_TYPES = ("string", "integer", "number", "boolean", "object", "enum")
"""Element types an array parameter may have."""


def check_blueprint(
    draft: BlueprintDraft,
    *,
    outline: BlueprintOutline,
    catalogue: EntityCatalogue,
    limits: BlueprintConfig,
) -> list[str]:
    """Problems with a repaired blueprint, as re-ask sentences.

    Run it on the output of `normalize_blueprint` (see `blueprint_checker`) so
    the model is not asked to fix what repair already fixes.

    Args:
        draft: The repaired blueprint.
        outline: The outline it was drafted from.
        catalogue: The entity catalogue.
        limits: The blueprint limits.

    Returns:
        Problem sentences naming the relationship, column, function or parameter
        to change; empty when the blueprint is usable.
    """
    scope = blueprint_scope(catalogue, draft.core_entity, draft.peripheral_entities)
    problems = _entity_problems(draft, outline, scope, limits)
    problems += _relationship_set_problems(draft.relationships, limits)
    for relationship in draft.relationships:
        problems += _relationship_problems(relationship, scope)
    problems += _function_set_problems(draft.functions, scope, limits)
    for function in draft.functions:
        problems += _function_problems(function, scope)
    return problems


def blueprint_checker(
    *, outline: BlueprintOutline, catalogue: EntityCatalogue, limits: BlueprintConfig
) -> Callable[[BlueprintDraft], list[str]]:
    """The `check` function for `BlueprintDraft` validation context.

    It repairs the draft first and checks the repaired form.
    """

    def check(draft: BlueprintDraft) -> list[str]:
        repaired = normalize_blueprint(draft, outline=outline, catalogue=catalogue)
        return check_blueprint(
            repaired, outline=outline, catalogue=catalogue, limits=limits
        )

    return check


def _entity_problems(
    draft: BlueprintDraft,
    outline: BlueprintOutline,
    scope: BlueprintScope,
    limits: BlueprintConfig,
) -> list[str]:
    core, *peripherals = scope.members
    problems: list[str] = []
    if core != outline.core_entity:
        problems.append(
            f"core_entity must be '{outline.core_entity}', the core of the outline, "
            f"not '{draft.core_entity}'."
        )
    if len(peripherals) > limits.max_peripheral_entities:
        problems.append(
            f"The blueprint has {len(peripherals)} peripheral entities "
            f"({', '.join(peripherals)}); use at most "
            f"{limits.max_peripheral_entities}."
        )
    for name in scope.members:
        if name not in scope.catalogue:
            problems.append(
                f"Entity '{name}' is not in the entity catalogue; do not invent "
                "entities."
            )
    return problems


def _relationship_set_problems(
    relationships: Sequence[RelationshipDraft], limits: BlueprintConfig
) -> list[str]:
    problems: list[str] = []
    most = limits.max_relationships_per_blueprint
    if len(relationships) > most:
        problems.append(
            f"The blueprint has {len(relationships)} relationships; the maximum is "
            f"{most}. Drop or merge relationships (never merge two entities' ids "
            "into one column) and adjust the functions."
        )
    originals = [relationship.name.strip() for relationship in relationships]
    targets = [to_pascal(raw) or raw for raw in originals]
    for raw, target in zip(originals, targets, strict=True):
        if not PASCAL_PATTERN.match(target) or len(target) > MAX_NAME:
            problems.append(
                f"Relationship '{raw}' needs a PascalCase name starting with a "
                "letter, e.g. PatientAppointment."
            )
    problems += _collisions("The blueprint", "relationship", originals, targets)
    return problems


def _relationship_problems(
    relationship: RelationshipDraft, scope: BlueprintScope
) -> list[str]:
    label = f"Relationship '{relationship.name}'"
    key = relationship_key(to_pascal(relationship.name) or relationship.name)
    columns = relationship.attributes
    own = next((column for column in columns if column.name == key), None)
    problems: list[str] = []
    if own is None:
        problems.append(
            f"{label} has no column '{key}'; add it as the relationship's own id "
            f"with value_from_entity '{SYSTEM_GENERATED}'."
        )
    elif own.value_from_entity != SYSTEM_GENERATED:
        problems.append(
            f"{label}: column '{key}' is the relationship's own id, so its "
            f"value_from_entity must be '{SYSTEM_GENERATED}', not "
            f"'{own.value_from_entity}'."
        )
    for column in columns:
        generated = column.value_from_entity == SYSTEM_GENERATED
        if generated and column.name != key and column.name.endswith("_id"):
            problems.append(
                f"{label}: column '{column.name}' is a second generated id; a "
                f"relationship has exactly one id, '{key}'. Remove it or take its "
                "value from an entity key."
            )
    core = scope.core
    if core is not None:
        reference = f"{core.name}.{core.primary_key}"
        if all(column.value_from_entity != reference for column in columns):
            problems.append(
                f"{label} does not reference the core entity; add a column "
                f"'{core.primary_key}' with value_from_entity '{reference}'."
            )
    originals = [column.name.strip() for column in columns]
    targets = [
        column_target(
            column.name,
            resolve_value(column.value_from_entity, scope),
            to_pascal(relationship.name) or relationship.name,
            scope,
        )
        for column in columns
    ]
    for column, target in zip(columns, targets, strict=True):
        problems += _column_problems(label, column, target, scope)
    problems += _collisions(label, "column", originals, targets)
    return problems


def _column_problems(
    label: str, column: ColumnDraft, target: str, scope: BlueprintScope
) -> list[str]:
    """Problems of one column; its name is judged by what repair makes of it."""
    where = f"{label}, column '{column.name}'"
    problems: list[str] = []
    if not SLUG_PATTERN.match(target) or len(target) > MAX_NAME:
        problems.append(
            f"{where} is not a valid name; use snake_case starting with a letter."
        )
    problems += _value_problems(where, column.value_from_entity, scope)
    kind = attribute_type(column.type)
    if kind is None:
        problems.append(
            f"{where} has type '{column.type}', which is not supported; use one "
            f"of: {', '.join(ATTRIBUTE_TYPES)}."
        )
    elif kind == "enum" and len(enum_values(None, column.range)) < 2:
        problems.append(
            f"{where} is an enum; give at least 2 allowed values as a "
            "comma-separated range."
        )
    return problems


def _value_problems(where: str, value: str, scope: BlueprintScope) -> list[str]:
    if value in (SYSTEM_GENERATED, RANDOM_VALUE):
        return []
    head, dot, tail = value.partition(".")
    if not dot or not head or not tail:
        core = scope.core
        example = f"{core.name}.{core.primary_key}" if core else "Entity.attribute"
        return [
            f"{where}: value_from_entity '{value}' is not valid; use "
            f"'Entity.attribute' (e.g. '{example}'), '{SYSTEM_GENERATED}' or "
            f"'{RANDOM_VALUE}'."
        ]
    entity = scope.catalogue.get(head) if head in scope.members else None
    if entity is None:
        return [
            f"{where}: value_from_entity '{value}' names '{head}', which is not an "
            f"entity of this blueprint; use one of {', '.join(scope.members)}, or "
            f"'{RANDOM_VALUE}'."
        ]
    if tail not in entity.attributes:
        return [
            f"{where}: value_from_entity '{value}' names no attribute of {head}; "
            f"use one of: {', '.join(entity.attributes)}."
        ]
    return []


def _function_set_problems(
    functions: Sequence[FunctionDraft], scope: BlueprintScope, limits: BlueprintConfig
) -> list[str]:
    problems: list[str] = []
    least = limits.min_functions_per_blueprint
    if len(functions) < least:
        problems.append(
            f"The blueprint has {len(functions)} functions; at least {least} are "
            "required. Add functions such as list, get, create, update and cancel "
            "operations on the relationships."
        )
    for name, count in Counter(function.name for function in functions).items():
        if count > 1:
            problems.append(
                f"Function name '{name}' is used {count} times; give each function "
                "a distinct name."
            )
    core = scope.members[0]
    key = scope.core.primary_key if scope.core else entity_key(core)
    authorizing = [function for function in functions if function.is_authorization]
    if not authorizing:
        problems.append(
            "No function has is_authorization true; mark exactly one function that "
            f"takes '{key}' and returns only success or failure as the "
            "authorization function."
        )
    elif len(authorizing) > 1:
        names = ", ".join(f"'{function.name}'" for function in authorizing)
        problems.append(
            f"Functions {names} all have is_authorization true; exactly one "
            "function may be the authorization function."
        )
    elif key not in [parameter.name for parameter in authorizing[0].parameters]:
        problems.append(
            f"Authorization function '{authorizing[0].name}' must take a parameter "
            f"named '{key}' (the key of {core})."
        )
    return problems


def _function_problems(function: FunctionDraft, scope: BlueprintScope) -> list[str]:
    label = f"Function '{function.name}'"
    problems: list[str] = []
    if not TOOL_NAME_PATTERN.match(function.name) or len(function.name) > MAX_TOOL_NAME:
        problems.append(
            f"Function name '{function.name}' is not a valid tool name; use letters, "
            "digits and underscores, starting with a letter or underscore, at most "
            f"{MAX_TOOL_NAME} characters."
        )
    for accessor in function.legal_accessor:
        if accessor not in scope.members:
            problems.append(
                f"{label}: legal_accessor '{accessor}' is not an entity of this "
                f"blueprint; use {', '.join(scope.members)} or leave it empty."
            )
    originals = [parameter.name.strip() for parameter in function.parameters]
    targets = [parameter_target(raw, scope) for raw in originals]
    for parameter, target in zip(function.parameters, targets, strict=True):
        problems += _parameter_problems(label, parameter, target)
    problems += _collisions(label, "parameter", originals, targets)
    return problems


def _parameter_problems(
    label: str, parameter: ParameterDraft, target: str
) -> list[str]:
    """Problems of one parameter; its name is judged by what repair makes of it."""
    where = f"{label}, parameter '{parameter.name}'"
    problems: list[str] = []
    if not TOOL_NAME_PATTERN.match(target) or len(target) > MAX_TOOL_NAME:
        problems.append(
            f"{where} is not a valid name; use snake_case starting with a letter."
        )
    kind = attribute_type(parameter.type)
    items = attribute_type(parameter.items_type) if parameter.items_type else None
    if kind is None:
        problems.append(
            f"{where} has type '{parameter.type}', which is not supported; use one "
            f"of: {', '.join(ATTRIBUTE_TYPES)}."
        )
    elif kind == "array" and parameter.items_type is None:
        problems.append(
            f"{where} is an array; set items_type to the type of its elements "
            "(e.g. string)."
        )
    elif kind == "array" and items not in ITEM_TYPES:
        problems.append(
            f"{where} has items_type '{parameter.items_type}', which is not "
            f"supported; use one of: {', '.join(ITEM_TYPES)}."
        )
    is_enum = kind == "enum" or (kind == "array" and items == "enum")
    if is_enum and len(enum_values(parameter.enum, parameter.range)) < 2:
        problems.append(
            f"{where} is an enum; list at least 2 allowed values in 'enum' (or as "
            "a comma-separated 'range')."
        )
    return problems


def _collisions(
    label: str, noun: str, originals: Sequence[str], targets: Sequence[str]
) -> list[str]:
    """Sentences for names that are, or would become, the same name."""
    groups: dict[str, list[str]] = {}
    for raw, target in zip(originals, targets, strict=True):
        groups.setdefault(target, []).append(raw)
    problems: list[str] = []
    for target, names in groups.items():
        if len(names) < 2:
            continue
        if len(set(names)) == 1:
            problems.append(
                f"{label}: {noun} '{names[0]}' appears {len(names)} times; keep "
                "one, or rename the others to say what they hold."
            )
            continue
        quoted = " and ".join(f"'{name}'" for name in names)
        amount = "both" if len(names) == 2 else "all"
        example = f" (e.g. 'referring_{target}')" if noun == "column" else ""
        problems.append(
            f"{label}: {noun}s {quoted} would {amount} be named '{target}'; keep "
            f"one, or rename the others to say what they hold{example}."
        )
    return problems

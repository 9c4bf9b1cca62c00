"""s02 entity extraction logic: takes `EntityBatchDraft`s with their domain slugs,
and `EntityBatch`es; returns problem sentences for re-asks, canonical `Entity`s
(PascalCase names, canonical primary keys, typed attributes), the merged
`EntityCatalogue` and its reference `entities.json` shape, plus the attribute type
vocabulary s04 reuses; no side effects."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import partial
from typing import get_args

from schemas.base import NAME_MAX_LENGTH, SLUG_PATTERN
from schemas.entity import (
    Attribute,
    AttributeDraft,
    AttributeType,
    Entity,
    EntityBatch,
    EntityBatchDraft,
    EntityCatalogue,
    EntityDraft,
)
from tasks.core.naming import entity_key, key_variants, name_fold, to_pascal, to_snake

ATTRIBUTE_TYPES: tuple[str, ...] = get_args(AttributeType)
RESERVED_ENTITY = "Session"
MAX_NAME_LENGTH = NAME_MAX_LENGTH

_TYPE_SYNONYMS: dict[str, AttributeType] = {
    "string": "string",
    "str": "string",
    "text": "string",
    "uuid": "string",
    "integer": "integer",
    "int": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "decimal": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "enum": "enum",
    "date": "date",
    "datetime": "datetime",
    "date-time": "datetime",
    "timestamp": "datetime",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
}
_PARAMETRISED_ARRAY = re.compile(r"^(?:list|array)\s*[\[<(]\s*([A-Za-z_-]+)\s*[\]>)]$")


def attribute_type(raw: str) -> AttributeType | None:
    """Map a type as written by a model to an `AttributeType`.

    Args:
        raw: e.g. "str", "Timestamp", "list[int]".

    Returns:
        The attribute type ("string", "datetime", "array"), or None if unknown.
    """
    text = raw.strip().lower()
    if _PARAMETRISED_ARRAY.match(text):
        return "array"
    return _TYPE_SYNONYMS.get(text)


def array_item_type(raw: str) -> str | None:
    """The element type written inside a parametrised array type.

    Args:
        raw: e.g. "list[int]" or "array<string>".

    Returns:
        The inner type as written ("int", "string"), or None when there is none.
    """
    match = _PARAMETRISED_ARRAY.match(raw.strip().lower())
    return match.group(1) if match else None


def enum_values(enum: Sequence[str] | None, range_text: str) -> tuple[str, ...]:
    """Allowed values of an enum: the explicit list, else the comma-separated range.

    Args:
        enum: Values listed explicitly, if any.
        range_text: The free-text range, e.g. "scheduled, completed".

    Returns:
        Stripped, non-empty values without repeats, in their written order.
    """
    values = list(enum) if enum else range_text.split(",")
    cleaned = (str(value).strip() for value in values)
    return tuple(dict.fromkeys(value for value in cleaned if value))


def check_entity_batch(draft: EntityBatchDraft, *, domains: Sequence[str]) -> list[str]:
    """Problems with one batch of drafted entities, as re-ask sentences.

    Args:
        draft: The model's answer for a batch of domains.
        domains: The domain slugs the batch was asked about.

    Returns:
        Problem sentences naming the entity and attribute to change; empty when
        the batch is usable.
    """
    allowed = sorted({to_snake(domain) for domain in domains})
    names = [to_pascal(entity.name) for entity in draft.entities]
    folds = [name.lower() for name in names]
    problems: list[str] = []
    reported: set[str] = set()
    for index, entity in enumerate(draft.entities):
        name = names[index]
        if name and folds[index] in folds[:index] and folds[index] not in reported:
            reported.add(folds[index])
            problems.append(
                f"Entity '{entity.name}' is listed more than once; merge its "
                "definitions into one entry."
            )
        others = [other for other in names if other and other.lower() != name.lower()]
        problems += _entity_name_problems(entity, name)
        problems += _key_problems(entity, name, others)
        problems += _attribute_problems(entity)
        for domain in entity.domains:
            if to_snake(domain) not in allowed:
                problems.append(
                    f"Entity '{entity.name}' lists domain '{domain}', which is not "
                    f"one of this request's domains ({', '.join(allowed)}); use "
                    "only those names."
                )
    return problems


def entity_batch_checker(
    *, domains: Sequence[str]
) -> Callable[[EntityBatchDraft], list[str]]:
    """The `check` function for `EntityBatchDraft` validation context."""
    return partial(check_entity_batch, domains=tuple(domains))


def _entity_name_problems(entity: EntityDraft, name: str) -> list[str]:
    if not name:
        return [
            f"Entity name '{entity.name}' has no letters; give a PascalCase name "
            "such as BankAccount."
        ]
    first = next(char for char in entity.name if char.isascii() and char.isalnum())
    if first.isdigit():
        return [f"Entity name '{entity.name}' must start with a letter."]
    if len(name) > MAX_NAME_LENGTH:
        return [f"Entity name '{entity.name}' is over {MAX_NAME_LENGTH} characters."]
    if name.lower() == RESERVED_ENTITY.lower():
        return [
            f"Entity '{entity.name}' is not allowed: sessions are handled by the "
            "server runtime; remove it."
        ]
    return []


def _key_problems(entity: EntityDraft, name: str, others: Sequence[str]) -> list[str]:
    key = to_snake(entity.primary_key)
    attributes = [to_snake(attribute.name) for attribute in entity.attributes]
    problems: list[str] = []
    if key not in attributes:
        problems.append(
            f"Entity '{entity.name}': primary_key '{entity.primary_key}' is not one "
            "of its attributes; add it to attributes, or set primary_key to the "
            f"attribute that identifies one {entity.name}."
        )
    for other in others:
        if key in key_variants(other):
            problems.append(
                f"Entity '{entity.name}' uses '{entity.primary_key}', the key of "
                f"entity '{other}', as its primary_key; give it its own key "
                f"'{entity_key(name)}', or remove it if it only exists as a link "
                f"between {other} and another entity (that is a relationship)."
            )
    canonical = entity_key(name) if name else ""
    if canonical and key != canonical and canonical in attributes:
        problems.append(
            f"Entity '{entity.name}' has primary_key '{entity.primary_key}' and also "
            f"an attribute '{canonical}'; make '{canonical}' the primary_key or "
            "remove it."
        )
    return problems


def _attribute_problems(entity: EntityDraft) -> list[str]:
    problems: list[str] = []
    by_name: dict[str, list[str]] = {}
    for attribute in entity.attributes:
        snake = to_snake(attribute.name)
        label = f"Entity '{entity.name}', attribute '{attribute.name}'"
        if not SLUG_PATTERN.match(snake) or len(snake) > MAX_NAME_LENGTH:
            problems.append(
                f"{label} is not a valid name; use snake_case starting with a letter."
            )
        else:
            by_name.setdefault(snake, []).append(attribute.name)
        kind = attribute_type(attribute.type)
        if kind is None:
            problems.append(
                f"{label} has type '{attribute.type}', which is not supported; use "
                f"one of: {', '.join(ATTRIBUTE_TYPES)}."
            )
        elif kind == "enum" and len(enum_values(attribute.enum, attribute.range)) < 2:
            problems.append(
                f"{label} is an enum with fewer than 2 values; list the allowed "
                "values in 'enum' (or as a comma-separated 'range')."
            )
    for snake, originals in by_name.items():
        if len(originals) > 1:
            quoted = ", ".join(f"'{original}'" for original in originals)
            problems.append(
                f"Entity '{entity.name}' has attributes {quoted}, which are the same "
                f"name '{snake}' in snake_case; keep only one."
            )
    return problems


def canonical_entities(
    draft: EntityBatchDraft, *, domains: Sequence[str]
) -> list[Entity]:
    """Convert a valid drafted batch to canonical entities, in draft order.

    Names become PascalCase; the declared primary key is renamed to
    `entity_key(name)` and placed first; attribute names become snake_case in
    draft order; types are mapped; enum values become a tuple; source domains are
    the sorted unique slugs.

    Args:
        draft: A batch that `check_entity_batch` accepts.
        domains: The domain slugs the batch was asked about.

    Returns:
        The canonical entities.

    Raises:
        ValueError: If the draft has problems (the message lists them).
    """
    problems = check_entity_batch(draft, domains=domains)
    if problems:
        raise ValueError("entity batch is not valid: " + " ".join(problems))
    return [_canonical_entity(entity) for entity in draft.entities]


def _canonical_entity(entity: EntityDraft) -> Entity:
    name = to_pascal(entity.name)
    key = entity_key(name)
    declared = to_snake(entity.primary_key)
    attributes: dict[str, Attribute] = {}
    for attribute in entity.attributes:
        if to_snake(attribute.name) == declared:
            attributes[key] = _canonical_attribute(attribute)
    for attribute in entity.attributes:
        snake = to_snake(attribute.name)
        if snake != declared:
            attributes[snake] = _canonical_attribute(attribute)
    return Entity(
        name=name,
        description=entity.description,
        is_person=entity.is_person,
        primary_key=key,
        attributes=attributes,
        source_domains=tuple(sorted({to_snake(domain) for domain in entity.domains})),
    )


def _canonical_attribute(attribute: AttributeDraft) -> Attribute:
    kind = attribute_type(attribute.type)
    if kind is None:
        raise ValueError(f"attribute '{attribute.name}' has unknown type")
    if kind == "enum":
        values: tuple[str, ...] | None = enum_values(attribute.enum, attribute.range)
    else:
        values = enum_values(attribute.enum, "") or None
    return Attribute(
        description=attribute.description,
        type=kind,
        range=attribute.range,
        enum=values,
    )


def entity_batch(draft: EntityBatchDraft, *, domains: Sequence[str]) -> EntityBatch:
    """Wrap a valid drafted batch as an `EntityBatch` (see `canonical_entities`).

    Raises:
        ValueError: If the draft has problems.
    """
    return EntityBatch(
        domains=tuple(domains),
        subfields=tuple(draft.subfields),
        entities=tuple(canonical_entities(draft, domains=domains)),
    )


def merge_batches(batches: Sequence[EntityBatch]) -> EntityCatalogue:
    """Merge entity batches into one catalogue.

    An entity defined in several batches keeps the description, person flag and
    attributes of its first definition (in batch order), gains the attributes of
    later definitions it does not have yet (in their order), and lists the union
    of their source domains.

    Args:
        batches: Batches in their significant order.

    Returns:
        The catalogue, with entities ordered by name.
    """
    merged: dict[str, Entity] = {}
    for batch in batches:
        for entity in batch.entities:
            first = merged.get(name_fold(entity.name))
            if first is None:
                merged[name_fold(entity.name)] = entity
                continue
            extra = {
                name: attribute
                for name, attribute in entity.attributes.items()
                if name not in first.attributes
            }
            domains = set(first.source_domains) | set(entity.source_domains)
            merged[name_fold(entity.name)] = first.model_copy(
                update={
                    "attributes": {**first.attributes, **extra},
                    "source_domains": tuple(sorted(domains)),
                }
            )
    ordered = sorted(merged.values(), key=lambda entity: entity.name)
    return EntityCatalogue(entities={entity.name: entity for entity in ordered})


def entities_export(catalogue: EntityCatalogue) -> dict[str, dict]:
    """The catalogue in the reference `entities.json` shape.

    Args:
        catalogue: The merged catalogue.

    Returns:
        `{Name: {"attributes": {attr: {"description", "type", "range", "enum"?}},
        "description", "is_person", "primary_key", "source_domains"}}`; an enum's
        values also fill an empty "range", comma-joined.
    """
    return {
        name: {
            "attributes": {
                attr: _attribute_export(attribute)
                for attr, attribute in entity.attributes.items()
            },
            "description": entity.description,
            "is_person": entity.is_person,
            "primary_key": entity.primary_key,
            "source_domains": list(entity.source_domains),
        }
        for name, entity in sorted(catalogue.entities.items())
    }


def _attribute_export(attribute: Attribute) -> dict[str, object]:
    exported: dict[str, object] = {
        "description": attribute.description,
        "type": attribute.type,
        "range": attribute.range or ",".join(attribute.enum or ()),
    }
    if attribute.enum:
        exported["enum"] = list(attribute.enum)
    return exported

"""Name normalisation shared by every stage: takes plain strings and returns
snake_case and PascalCase forms, an entity's canonical primary-key name and its
common misspellings, and order-preserving de-duplicated name lists; no side
effects."""

from __future__ import annotations

import re
from collections.abc import Iterable

_ACRONYM_BOUNDARY = re.compile(r"([A-Z]+)([A-Z][a-z])")
_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_PASCAL_SEPARATORS = frozenset(" -_")


def to_snake(name: str) -> str:
    """Convert a name to snake_case.

    Camel-case boundaries become underscores, every run of characters that are not
    ASCII letters or digits becomes one underscore, and leading or trailing
    underscores are stripped.

    Args:
        name: Any name, e.g. "BankAccount", "Dental Clinic" or "e-commerce".

    Returns:
        The snake_case form ("bank_account", "dental_clinic", "e_commerce"), or ""
        when the name has no ASCII letters or digits.
    """
    text = _ACRONYM_BOUNDARY.sub(r"\1_\2", name.strip())
    text = _CAMEL_BOUNDARY.sub(r"\1_\2", text)
    return _NON_ALNUM.sub("_", text).strip("_").lower()


def to_pascal(name: str) -> str:
    """Convert a name to PascalCase with the reference server-name sanitiser.

    Space, hyphen and underscore are separators: the next letter or digit after
    one is upper-cased, as is the first. Other characters that are not ASCII
    letters or digits are dropped. Existing inner capitals are kept.

    Args:
        name: Any name, e.g. "patient clinic-scheduler" or "patientCare".

    Returns:
        The PascalCase form ("PatientClinicScheduler", "PatientCare"), prefixed with
        "MCP" when it would start with a digit, or "" when nothing is left.
    """
    parts: list[str] = []
    upper_next = True
    for char in name:
        if char in _PASCAL_SEPARATORS:
            upper_next = True
        elif char.isascii() and char.isalnum():
            parts.append(char.upper() if upper_next else char)
            upper_next = False
    text = "".join(parts)
    if text[:1].isdigit():
        return f"MCP{text}"
    return text


def name_fold(name: str) -> str:
    """Key under which two spellings of one entity name compare equal.

    Args:
        name: An entity name as written by a model ("bank account", "BANKACCOUNT").

    Returns:
        The lower-cased PascalCase form ("bankaccount").
    """
    return to_pascal(name).lower()


def entity_key(entity_name: str) -> str:
    """The canonical primary-key attribute name of an entity.

    Args:
        entity_name: An entity name such as "BankAccount".

    Returns:
        The snake_case name plus "_id" ("bank_account_id").
    """
    return f"{to_snake(entity_name)}_id"


def key_variants(entity_name: str) -> set[str]:
    """Spellings of an entity's key that are repaired to the canonical key.

    Args:
        entity_name: An entity name such as "BankAccount".

    Returns:
        The canonical key and the reference's lower-cased form, e.g.
        {"bank_account_id", "bankaccount_id"}.
    """
    return {entity_key(entity_name), f"{to_pascal(entity_name).lower()}_id"}


def unique_names(names: Iterable[str]) -> list[str]:
    """Make names unique by appending 1, 2, ... to repeats, in order.

    The first occurrence of every name keeps it, and a suffix never produces a
    name that appears elsewhere in the input. Names are compared case-insensitively
    because they become file and module names.

    Args:
        names: Names in their significant order.

    Returns:
        The names with repeats suffixed, e.g. ["A", "A", "A"] -> ["A", "A1", "A2"]
        and ["A", "A", "A1"] -> ["A", "A2", "A1"].
    """
    names = list(names)
    keeps: list[bool] = []
    taken: set[str] = set()
    for name in names:
        keeps.append(name.casefold() not in taken)
        taken.add(name.casefold())
    result: list[str] = []
    for name, keep in zip(names, keeps, strict=True):
        if keep:
            result.append(name)
            continue
        suffix = 1
        while f"{name}{suffix}".casefold() in taken:
            suffix += 1
        result.append(f"{name}{suffix}")
        taken.add(f"{name}{suffix}".casefold())
    return result

"""Tests for name normalisation shared by every stage."""

import pytest

from tasks.core.naming import (
    entity_key,
    key_variants,
    name_fold,
    to_pascal,
    to_snake,
    unique_names,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("BankAccount", "bank_account"),
        ("Dental Clinic", "dental_clinic"),
        ("e-commerce", "e_commerce"),
        ("  bank__account  ", "bank_account"),
        ("HTTPServer", "http_server"),
        ("patientID", "patient_id"),
        ("bank_account_id", "bank_account_id"),
        ("Level3Access", "level3_access"),
        ("--", ""),
    ],
)
def test_to_snake_converts_camel_spaced_and_hyphenated_names(raw, expected):
    """Camel case, spaces and hyphens become single underscores in lower case."""
    assert to_snake(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("patient clinic-scheduler", "PatientClinicScheduler"),
        ("patientCare", "PatientCare"),
        ("bank_account", "BankAccount"),
        ("Patient's  care!", "PatientsCare"),
        ("3d printing", "MCP3dPrinting"),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_to_pascal_follows_reference_sanitiser_and_keeps_inner_capitals(raw, expected):
    """Separators upper-case the next character, others are dropped."""
    assert to_pascal(raw) == expected


def test_entity_key_is_snake_name_plus_id():
    """BankAccount's key is bank_account_id."""
    assert entity_key("BankAccount") == "bank_account_id"
    assert entity_key("Patient") == "patient_id"


def test_key_variants_include_canonical_and_lowercase_forms():
    """The reference's lower-cased key spelling is a variant of the canonical key."""
    assert key_variants("BankAccount") == {"bank_account_id", "bankaccount_id"}
    assert key_variants("Patient") == {"patient_id"}


def test_name_fold_ignores_case_and_separators():
    """Spellings of one entity name share a fold."""
    assert name_fold("bank account") == name_fold("BANK_ACCOUNT") == "bankaccount"


def test_unique_names_suffixes_repeats_in_order():
    """Repeats get 1, 2, ... and first occurrences keep their name."""
    assert unique_names(["A", "A", "B", "A"]) == ["A", "A1", "B", "A2"]


def test_unique_names_skips_suffixes_that_exist_in_input():
    """A suffix never reuses a name that appears elsewhere in the input."""
    assert unique_names(["A", "A1", "A"]) == ["A", "A1", "A2"]
    assert unique_names(["A", "A", "A1"]) == ["A", "A2", "A1"]


def test_unique_names_treats_case_variants_as_repeats():
    """Names that differ only in case would clash as file names."""
    assert unique_names(["Foo", "FOO"]) == ["Foo", "FOO1"]

"""Static checks of model-written s09 code: what is sent back to the model before
anything runs, and how assertions are counted to spot weakened tests."""

from __future__ import annotations

import pytest

from tasks.server_checks import (
    assertion_count,
    policy_test_problems,
    tool_module_problems,
)
from tests.tasks.test_server_implementation import MODULE, TESTS, dental_inputs

SPEC = dental_inputs().spec


def test_the_reference_module_and_tests_pass():
    """The fixture module and the sample tests have no static problem."""
    assert tool_module_problems(MODULE, SPEC) == []
    assert policy_test_problems(TESTS, SPEC) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("from datetime import datetime", "import os"),
            "import of 'os' is not allowed",
        ),
        (
            (
                "def list_clinics(env: Env, city: str | None = None)",
                "def list_clinics(env: Env, town: str)",
            ),
            "tool 'list_clinics': no keyword parameter 'city'",
        ),
        (
            ("def list_clinics(", "async def list_clinics("),
            "tool 'list_clinics': use a plain def",
        ),
        (
            ("def cancel_appointment(", "def cancel_it("),
            "missing function for tool 'cancel_appointment'",
        ),
        (
            ("def _parse_time(", "def parse_time("),
            "public functions that are not tools: parse_time",
        ),
        (
            ('CONFIRM_TOOLS = ("book_appointment",)', "CONFIRM_TOOLS = ()"),
            "declare CONFIRM_TOOLS = ('book_appointment',)",
        ),
        (
            ("return env.authorize(patient_id)", "return open(patient_id)"),
            "open() is not allowed",
        ),
        (
            ("if when <= env.now():", "if when <= datetime.now():"),
            "datetime.now() reads the wall clock",
        ),
        (
            (
                "from tasks.runtime import Env, ToolError",
                "from tasks.runtime.table import ToolError\n"
                "from tasks.runtime import Env",
            ),
            "import of 'tasks.runtime.table' is not allowed",
        ),
        (
            (
                'CONFIRM_TOOLS = ("book_appointment",)',
                'CONFIRM_TOOLS = ("book_appointment",)\nprint("hi")',
            ),
            "the module top level may only import",
        ),
    ],
)
def test_module_problems_name_what_to_change(change, problem):
    """Each violation yields a sentence the model can act on."""
    old, new = change
    assert old in MODULE
    problems = tool_module_problems(MODULE.replace(old, new), SPEC)
    assert any(problem in p for p in problems), problems


def test_a_module_that_does_not_parse_is_reported_with_its_line():
    """A syntax error stops the other checks."""
    assert tool_module_problems("def broken(:\n", SPEC) == [
        "the tool module does not parse: invalid syntax (line 1)"
    ]


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("import pytest\n", "define at least one top-level test_ function"),
        (
            "def test_nothing(call):\n    call('list_clinics')\n",
            "test_nothing asserts nothing",
        ),
        ("def test_a(db):\n    assert db\n", "test_a asks for unknown fixture(s) db"),
        (
            "def test_a(call):\n    assert call('book')\n",
            "the tests call 'book', which is not a tool",
        ),
        (
            "import pytest\n@pytest.mark.skip\ndef test_a(call):\n    assert call\n",
            "tests must not skip or xfail",
        ),
        (
            "import subprocess\ndef test_a(call):\n    assert call\n",
            "import of 'subprocess' is not allowed",
        ),
    ],
)
def test_policy_test_problems_name_what_to_change(code, problem):
    """Unknown fixtures and tools, skips, missing assertions are caught early."""
    problems = policy_test_problems(code, SPEC)
    assert any(problem in p for p in problems), problems


def test_parametrized_names_and_local_fixtures_are_known():
    """A test may take its own fixtures and parametrized arguments."""
    code = (
        "import pytest\n\n"
        "@pytest.fixture\ndef patient(data):\n    return data['Patient'][0]\n\n"
        "@pytest.mark.parametrize('status', ['booked'])\n"
        "def test_a(call, patient, status):\n    assert patient and status\n"
    )
    assert policy_test_problems(code, SPEC) == []


def test_assertions_count_only_non_constant_asserts_and_raises_blocks():
    """`assert True` does not count; `pytest.raises` does."""
    code = (
        "import pytest\n"
        "def test_a(x):\n"
        "    assert x == 1\n"
        "    assert True\n"
        "    with pytest.raises(ValueError):\n"
        "        int('x')\n"
    )
    assert assertion_count(code) == 2
    assert assertion_count("def broken(:") == 0

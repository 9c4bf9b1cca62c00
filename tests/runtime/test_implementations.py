"""Tests for loading tool-body modules and checking their signatures."""

import sys
import textwrap
from pathlib import Path

import pytest

from schemas.environment import ToolSpec
from tasks.runtime.environment import Environment
from tasks.runtime.implementations import (
    ImplementationError,
    load_implementations,
    load_tool_module,
    module_confirm_tools,
    signature_problems,
)
from tests.runtime import FIXTURE_DIR, SERVER

TOOLS = [
    "authorize_patient",
    "list_clinics",
    "book_appointment",
    "list_my_appointments",
    "cancel_appointment",
]
BOOK = ToolSpec(
    name="book",
    description="Book.",
    effect="write",
    needs_confirmation=True,
    parameters={
        "type": "object",
        "properties": {
            "clinic_id": {"type": "string"},
            "note": {"type": "string"},
            "confirm": {"type": "boolean", "default": False},
        },
        "required": ["clinic_id"],
        "additionalProperties": False,
    },
)


def _module(tmp_path: Path, source: str, name: str = "Scratch") -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def test_fixture_module_provides_one_function_per_tool():
    """The loader returns the functions by tool name, in tool order."""
    path = FIXTURE_DIR / "mcp_servers" / f"{SERVER}.py"
    bodies = load_implementations(path, TOOLS)
    assert list(bodies) == TOOLS
    assert bodies["book_appointment"].__module__ == f"agentskiller_env_{SERVER}"
    assert module_confirm_tools(sys.modules[f"agentskiller_env_{SERVER}"]) == {
        "book_appointment"
    }


def test_missing_and_extra_functions_are_reported_by_name(tmp_path: Path):
    """A misnamed tool shows up both as missing and as an extra function."""
    path = _module(
        tmp_path,
        """
        TOOL_COUNT = 2

        def authorize_patient(env, patient_id):
            return {}

        def book_appt(env, clinic_id):
            return {}

        def _helper():
            return None

        list_clinics = TOOL_COUNT
        """,
    )
    with pytest.raises(ImplementationError) as caught:
        load_implementations(
            path, ["authorize_patient", "book_appointment", "list_clinics"]
        )
    assert caught.value.problems == (
        "missing function for tool 'book_appointment'",
        "'list_clinics' is not a function (it is a int)",
        "public functions that are not tools: book_appt (rename helpers with a "
        "leading underscore)",
    )


def test_import_failures_are_reported_with_the_exception(tmp_path: Path):
    """A module that raises at import is refused, naming the exception."""
    path = _module(tmp_path, "raise RuntimeError('boom')\n", name="Broken")
    with pytest.raises(ImplementationError, match="import failed: RuntimeError: boom"):
        load_tool_module(path)
    assert "agentskiller_env_Broken" not in sys.modules
    with pytest.raises(ImplementationError, match="does not exist"):
        load_tool_module(tmp_path / "Absent.py")


def test_confirm_tools_must_be_a_collection_of_names(tmp_path: Path):
    """A bare string would silently mean its characters: it is refused."""
    module = load_tool_module(
        _module(tmp_path, "CONFIRM_TOOLS = 'book'\n", name="Strs")
    )
    with pytest.raises(ImplementationError, match="CONFIRM_TOOLS must be a tuple"):
        module_confirm_tools(module)


def test_a_fitting_signature_has_no_problems():
    """Env first, required keywords, defaults for optional ones; **kwargs is ok."""

    def book(env, clinic_id, note="", confirm=False, **kwargs):
        return {}

    def generic(env, **arguments):
        return {}

    assert signature_problems(book, BOOK) == []
    assert signature_problems(generic, BOOK) == []


def test_signature_problems_name_each_mismatch():
    """Missing parameters, optional ones without defaults and strays are named."""

    def book(env, note, *, extra):
        return {}

    async def coroutine(env, clinic_id):
        return {}

    def no_env(*, clinic_id):
        return {}

    assert signature_problems(book, BOOK) == [
        "tool 'book': no keyword parameter 'clinic_id'",
        "tool 'book': optional parameter 'note' needs a default",
        "tool 'book': no keyword parameter 'confirm'",
        "tool 'book': parameter 'extra' is not in the tool schema",
    ]
    assert signature_problems(coroutine, BOOK) == [
        "tool 'book': the body must be a plain def returning a JSON value"
    ]
    assert signature_problems(no_env, BOOK) == [
        "tool 'book': the first parameter must take the env positionally"
    ]


def test_environment_refuses_bodies_that_do_not_fit_their_tools(environment):
    """Missing bodies, stray bodies and bad signatures stop construction."""
    bodies = {
        name: getattr(sys.modules[f"agentskiller_env_{SERVER}"], name)
        for name in TOOLS[1:]
    }

    def list_clinics(env):
        return {}

    def refund(env):
        return {}

    bodies |= {"list_clinics": list_clinics, "refund": refund}
    with pytest.raises(ValueError) as caught:
        Environment(environment.spec, environment.base, bodies)
    assert str(caught.value) == (
        "environment DentalAppointments: no body for tool 'authorize_patient'; "
        "body 'refund' has no tool; tool 'list_clinics': no keyword parameter "
        "'city'"
    )

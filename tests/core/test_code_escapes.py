"""Tests of the static refusal of module escapes in generated code: every evasion
named in issue 6 is rejected with a sentence naming it, in tool modules, policy
tests and data scripts alike, and ordinary generated code is not."""

from __future__ import annotations

import ast

import pytest

from tasks.core.code_escapes import escape_problems
from tasks.core.data_scripts import script_problems
from tasks.server_checks import policy_test_problems, tool_module_problems
from tests.tasks.test_server_implementation import MODULE, dental_inputs

SPEC = dental_inputs().spec

EVASIONS = [
    ('x = __import__("os")', "`__import__` is not allowed: dunder names"),
    (
        'import builtins\nx = builtins.__import__("os")',
        "`builtins.__import__` is not allowed: dunder names",
    ),
    (
        'x = getattr(__builtins__, "__import__")',
        "`__builtins__` is not allowed: dunder names",
    ),
    (
        'import builtins\nx = getattr(builtins, "__import__")',
        "`getattr(..., '__import__')` is not allowed: it reaches `__import__`",
    ),
    ("import random\nx = random._os", "`random._os` is not allowed: attributes"),
    (
        'import random\nx = getattr(random, "_os")',
        "`getattr(..., '_os')` is not allowed: it reaches `_os` by name",
    ),
    ("import typing\nx = typing.sys", "`typing.sys` is not allowed: it reaches the "),
    (
        "import uuid\nx = uuid.os",
        "`uuid.os` is not allowed: it reaches the module 'os'",
    ),
    (
        'import importlib\nx = importlib.import_module("os")',
        "`importlib` is not allowed: it reaches the module 'importlib'",
    ),
    (
        'import json\nx = json.importlib.import_module("os")',
        "`json.importlib` is not allowed: it reaches the module 'importlib'",
    ),
    ("from random import _os", "`from random import _os`: attributes starting"),
    ("from typing import *", "`from typing import *` is not allowed"),
    ("import json\nx = getattr(json, name)", "`getattr` with a computed name"),
    (
        "import operator\nx = operator.attrgetter('__globals__')",
        "`attrgetter(..., '__globals__')` is not allowed",
    ),
    ("x = ().__class__.__base__", "`().__class__` is not allowed: dunder names"),
    ('x = "{0.__class__}".format(1)', "a format field that reads an attribute"),
    ("f = eval", "eval() is not allowed, not even as a reference"),
    (
        "def _g():\n    yield 1\nx = _g().gi_frame.f_back.f_builtins",
        "`_g().gi_frame` is not allowed: frames, code objects and tracebacks",
    ),
    (
        "import functools\nx = functools.reduce(getattr, ['a', 'b'], 1)",
        "`getattr` is not allowed as a value",
    ),
    (
        "template = '{0.' + '_' + '_class__}'\nx = template.format(1)",
        "`format` on a computed format string is not allowed",
    ),
    ("import string\nx = string.Formatter()", "`Formatter` is not allowed"),
    ("x = vars()", "vars() is not allowed"),
]


def _problems(code: str) -> list[str]:
    return escape_problems(ast.parse(code))


@pytest.mark.parametrize(("code", "problem"), EVASIONS)
def test_each_evasion_is_named_in_a_problem_sentence(code: str, problem: str):
    """The sentence names the construct and why it is refused."""
    problems = _problems(code)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(("code", "problem"), EVASIONS)
def test_each_evasion_stops_a_tool_module(code: str, problem: str):
    """Appended to the fixture module, every evasion is a tool-module problem."""
    source = MODULE + "\n\ndef _helper():\n" + _indent(code) + "\n    return x\n"
    if code.startswith("f = "):
        source = MODULE + "\n\n" + code + "\n"
    problems = tool_module_problems(source, SPEC)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(("code", "problem"), EVASIONS)
def test_each_evasion_stops_a_data_script(code: str, problem: str):
    """Data scripts (which may use `random`) get the same refusal."""
    script = (
        "import json\n"
        "spec = json.load(open('input.json'))\n"
        f"{code}\n"
        "json.dump([], open('output.json', 'w'))\n"
    )
    problems = script_problems(script)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize("module", ["importlib", "builtins", "sys", "os", "ctypes"])
def test_imports_of_the_machinery_are_refused_by_every_allowlist(module: str):
    """Importing the import machinery, the interpreter or the OS is refused."""
    code = f"import {module}\n"
    tool = tool_module_problems(MODULE + code, SPEC)
    script = script_problems(code + "open('input.json')\nopen('output.json')\n")
    assert any(f"import of '{module}' is not allowed" in p for p in tool), tool
    assert any(f"the script imports {module};" in p for p in script), script


def test_policy_tests_are_checked_too():
    """A policy test reaching `sys` through `typing` is refused."""
    code = "import typing\n\ndef test_a(call):\n    assert typing.sys.modules\n"
    problems = policy_test_problems(code, SPEC)
    assert any("`typing.sys` is not allowed" in p for p in problems), problems


def test_problems_carry_the_line_number():
    """The model can find the offending line."""
    assert _problems("import random\n\nx = random._os\n") == [
        "line 3: `random._os` is not allowed: attributes starting with '_' are "
        "private; on a module they reach the modules it imported (as `random._os` "
        "reaches `os`)"
    ]


def test_ordinary_generated_code_is_accepted():
    """Private helpers, self attributes, the main idiom and plain attribute and
    getattr use are fine."""
    code = (
        "import random\n"
        "from collections import abc\n"
        "class _Pool:\n"
        "    def __init__(self, seed):\n"
        "        self._rng = random.Random(seed)\n"
        "    def pick(self, rows):\n"
        "        return self._rng.choice(rows)\n"
        "def _name(row):\n"
        "    return getattr(row, 'name', None) or f\"{row['first']} {row['last']}\"\n"
        "def _label(row):\n"
        "    return '{} ({:.2f})'.format(row['name'], row['price']) + format(1, 'd')\n"
        "if __name__ == '__main__':\n"
        "    print(_Pool(1).pick([1, 2]), isinstance({}, abc.Mapping))\n"
    )
    assert _problems(code) == []


def test_the_fixture_module_has_no_escape():
    """The hand-written reference module passes untouched."""
    assert escape_problems(ast.parse(MODULE)) == []


def _indent(code: str) -> str:
    return "\n".join(f"    {line}" for line in code.splitlines())

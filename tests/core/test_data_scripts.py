"""s06 generator scripts: the static checks, the sandbox request that carries the
script contract, and how a failed run is reported."""

from __future__ import annotations

import json

import pytest

from schemas.database import ColumnContract, DataProblem, TableContract
from schemas.sandbox import SandboxResult
from tasks.core.data_scripts import run_problems, script_problems, script_request

NOW = "2025-01-23T15:00:00-05:00"
GOOD = """import json
import random

spec = json.load(open("input.json"))
rng = random.Random(spec["seed"])
rows = [{"id": str(rng.random())} for _ in range(spec["n"])]
json.dump(rows, open("output.json", "w"))
"""


def test_a_seeded_script_that_reads_and_writes_the_contract_files_passes():
    """Allowed imports, both file names, no clock: no problems."""
    assert script_problems(GOOD) == []


@pytest.mark.parametrize(
    ("script", "problem"),
    [
        ("def broken(:\n", "the script does not parse: invalid syntax (line 1)"),
        (
            GOOD.replace("output.json", "rows.json"),
            "the script never names output.json; it must read input.json and write "
            "output.json",
        ),
        (
            "import os\n" + GOOD,
            "the script imports os; allowed modules: collections, datetime, decimal, "
            "functools, itertools, json, math, operator, random, re, statistics, "
            "string, uuid",
        ),
        (
            GOOD + "import uuid\nx = uuid.uuid4()\n",
            "the script calls uuid4(), which differs between runs; derive ids and "
            "values from random.Random(spec['seed']) and times from "
            "spec['simulation_time']",
        ),
        (
            "from datetime import datetime\n" + GOOD + "t = datetime.now()\n",
            "the script calls now(), which differs between runs; derive ids and "
            "values from random.Random(spec['seed']) and times from "
            "spec['simulation_time']",
        ),
    ],
)
def test_scripts_that_cannot_be_run_as_generators_are_refused(script, problem):
    """Syntax, missing I/O, forbidden imports and nondeterministic calls."""
    assert script_problems(script) == [problem]


def test_sandbox_request_carries_the_contract_and_read_only_tables():
    """input.json is the contract; each referenced table is tables/<Name>.json."""
    contract = TableContract(
        table="Visit",
        kind="relationship",
        server="Care",
        primary_key="visit_id",
        columns={
            "visit_id": ColumnContract(type="string"),
            "patient_id": ColumnContract(type="string", references="Patient"),
        },
        n=2,
        seed=9,
        simulation_time=NOW,
        tables={"Patient": "patient_id"},
    )
    rows = [{"patient_id": "p1"}]
    request = script_request(
        GOOD, contract, {"Patient": rows}, timeout_s=2.5, memory_mb=256
    )
    assert request.argv == ("python", "generate.py")
    assert request.files["generate.py"] == GOOD
    assert json.loads(request.files["input.json"]) == contract.model_dump(mode="json")
    assert json.loads(request.files["tables/Patient.json"]) == rows
    assert (request.timeout_s, request.cpu_s, request.memory_mb) == (2.5, 3, 256)
    assert request.collect == ("output.json",)
    assert request.network is False and request.allow_subprocess is False


def test_a_crash_is_reported_with_its_traceback_and_no_scratch_paths():
    """The stderr tail is kept, the random scratch directory is cut out."""
    result = SandboxResult(
        status="exit_error",
        returncode=1,
        stderr='Traceback:\n  File "/tmp/agentskiller-sandbox-x1y2/scratch/generate.py"'
        ", line 3\nKeyError: 'id'\n",
        message="The program exited with code 1: KeyError: 'id'",
    )
    assert run_problems(result) == [
        DataProblem(
            kind="script_failed",
            message="The program exited with code 1: KeyError: 'id'\nstderr (end):\n"
            "Traceback:\n  File \"generate.py\", line 3\nKeyError: 'id'",
        )
    ]
    assert run_problems(SandboxResult(status="ok", message="fine")) == []

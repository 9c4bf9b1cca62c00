"""s06 table items against the real sandbox and the replay client: a script that
hangs, crashes, writes invalid rows or is not deterministic ends as a typed failed
item within its repair budget; a repaired script yields a canonical table."""

from __future__ import annotations

from pathlib import Path

import yaml

from schemas.artifact import Artifact, ItemOutcome, Producer
from schemas.entity import Attribute, Entity
from tasks import database_generation as s06
from tasks.database_authoring import NONDETERMINISTIC
from tasks.store.config_loader import load_config, with_overrides
from tests.conftest import DEMO_CONFIG
from tests.tasks.step_calls import call_task, local_step

WIDGET = Entity(
    name="Widget",
    description="A small part.",
    is_person=False,
    primary_key="widget_id",
    attributes={
        "colour": Attribute(
            description="Paint", type="enum", range="red,blue", enum=("red", "blue")
        ),
        "size": Attribute(description="Size", type="integer", range="1-5"),
        "widget_id": Attribute(description="Unique id", type="string"),
    },
    source_domains=("manufacturing",),
)
HEAD = 'import json\nimport random\n\nspec = json.load(open("input.json"))\n'
WRITE = 'json.dump(rows, open("output.json", "w"))\n'
VALID = (
    HEAD
    + 'rng = random.Random(spec["seed"])\n'
    + "rows = [\n"
    + '    {"widget_id": f"w{i}", "colour": rng.choice(["red", "blue"]), '
    + '"size": rng.randint(1, 5)}\n'
    + '    for i in range(spec["n"])\n'
    + "]\n"
    + WRITE
)
MISSING_EDIT = "<<<<<<< SEARCH\nrows = []\n=======\nrows = [{}]\n>>>>>>> REPLACE\n"


def _run(tmp_path: Path, calls: dict, *, retries: int = 1) -> tuple[ItemOutcome, list]:
    cassette = tmp_path / "s06.yaml"
    cassette.write_text(
        yaml.safe_dump({"version": 1, "scripted": True, "calls": calls}),
        encoding="utf-8",
    )
    settings = "steps.s06_database_generation"
    loaded = with_overrides(
        load_config(DEMO_CONFIG),
        str(tmp_path / "out"),
        overrides={
            "llm.cassette": str(cassette),
            f"{settings}.entities_per_table": 3,
            f"{settings}.max_code_fix_retries": retries,
            f"{settings}.script_timeout_s": 1.0,
        },
    )
    step = local_step(loaded, tmp_path / "out", "s06")
    entity = Artifact[Entity].build(
        kind="entity",
        id="Widget",
        payload=WIDGET,
        producer=Producer(
            step="s02", item_key="batch", params_hash="0", code_version="0"
        ),
    )
    outcome = call_task(
        step,
        s06.generate_entity_table,
        s06.entity_key("Widget"),
        model=step.config.steps.s06_database_generation,
        prompts=s06.TABLE_PROMPTS,
        entity=entity,
        blueprints=(),
        **s06.step_params(step.config),
    )
    calls_made = [(r.call_key, r.attempt) for r in step.res.ledger.records()]
    return outcome, calls_made


def test_a_hanging_script_is_stopped_and_rewritten_then_fails_typed(tmp_path):
    """Edits that never apply lead to a rewrite; a second hang ends the item."""
    hang = HEAD + "while True:\n    pass\nrows = None\n" + WRITE
    outcome, calls = _run(
        tmp_path,
        {
            "s06/entity/Widget": [{"script": hang}],
            "s06/entity/Widget/fix-1": [{"edits": MISSING_EDIT}] * 2,
            "s06/entity/Widget/rewrite-1": [{"script": hang}],
        },
    )
    assert outcome.failure is not None
    assert outcome.failure.reason == "validation_failed"
    assert not outcome.failure.retryable
    assert "after 2 run(s)" in outcome.failure.message
    stopped = outcome.failure.details[0]
    assert "wall-clock limit" in stopped or "CPU time" in stopped
    assert calls == [
        ("s06/entity/Widget", 0),
        ("s06/entity/Widget/fix-1", 0),
        ("s06/entity/Widget/fix-1", 1),
        ("s06/entity/Widget/rewrite-1", 0),
    ]


def test_a_crashing_script_ends_typed_with_the_last_error(tmp_path):
    """An applied edit that crashes differently still uses up the budget."""
    crash = HEAD + "rows = 1 / 0\n" + WRITE
    edit = "<<<<<<< SEARCH\nrows = 1 / 0\n=======\nrows = int('x')\n>>>>>>> REPLACE\n"
    outcome, calls = _run(
        tmp_path,
        {
            "s06/entity/Widget": [{"script": crash}],
            "s06/entity/Widget/fix-1": [{"edits": edit}],
        },
    )
    assert outcome.failure is not None
    assert outcome.failure.reason == "validation_failed"
    assert outcome.failure.details[0].startswith(
        "The program exited with code 1: ValueError"
    )
    assert len(calls) == 2


def test_invalid_rows_end_typed_with_every_problem(tmp_path):
    """Wrong count, unknown value and bad type are all listed in the failure."""
    green = 'rows = [{"widget_id": "w1", "colour": "green", "size": "big"}]\n'
    pink = green.replace("green", "pink")
    outcome, _ = _run(
        tmp_path,
        {
            "s06/entity/Widget": [{"script": HEAD + green + WRITE}],
            "s06/entity/Widget/fix-1": [
                {"edits": f"<<<<<<< SEARCH\n{green}=======\n{pink}>>>>>>> REPLACE\n"}
            ],
        },
    )
    assert outcome.failure is not None
    assert outcome.failure.reason == "validation_failed"
    assert outcome.failure.details == (
        "the table has 1 rows; exactly 3 are required",
        "row #0 (widget_id 'w1'): colour 'pink' is not one of: red, blue",
        "row #0 (widget_id 'w1'): size 'big' is not an integer",
    )


def test_an_unseeded_script_is_caught_by_the_second_run(tmp_path):
    """Output that differs between two runs of the same input is rejected."""
    unseeded = VALID.replace('f"w{i}"', "str(random.random())")
    outcome, _ = _run(
        tmp_path, {"s06/entity/Widget": [{"script": unseeded}]}, retries=0
    )
    assert outcome.failure is not None
    assert outcome.failure.details == (NONDETERMINISTIC,)


def test_a_repaired_script_gives_a_canonical_table_and_counts_its_runs(tmp_path):
    """A wrong key fixed by an edit: two runs, rows in contract order."""
    right = next(line for line in VALID.splitlines() if '"widget_id"' in line)
    wrong = right.replace('"widget_id"', '"id"')
    assert right in VALID
    edit = f"<<<<<<< SEARCH\n{wrong}\n=======\n{right}\n>>>>>>> REPLACE\n"
    outcome, _ = _run(
        tmp_path,
        {
            "s06/entity/Widget": [{"script": VALID.replace(right, wrong)}],
            "s06/entity/Widget/fix-1": [{"edits": edit}],
        },
    )
    assert outcome.failure is None, outcome.failure
    [artifact] = outcome.artifacts
    table = artifact.payload
    assert (artifact.kind, artifact.id, table.attempts) == ("data_table", "Widget", 2)
    assert [list(row) for row in table.rows] == [["widget_id", "colour", "size"]] * 3
    assert [row["widget_id"] for row in table.rows] == ["w0", "w1", "w2"]
    assert table.script == VALID


def test_a_first_script_that_never_passes_the_static_check_is_invalid_output(
    tmp_path,
):
    """Three answers importing os: the model is re-asked, then the item fails."""
    forbidden = {"script": "import os\n" + VALID}
    outcome, calls = _run(tmp_path, {"s06/entity/Widget": [forbidden] * 3})
    assert outcome.failure is not None
    assert outcome.failure.reason == "invalid_output"
    assert "imports os" in outcome.failure.message
    assert len(calls) == 3

"""`agentskiller check-task` replays a query's golden calls against the served
environment over stdio and compares the final state with the recorded one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from flows.cli import main
from schemas.artifact import RunStamp
from schemas.config import TaskFilterConfig
from schemas.validated_task import (
    QueryLineage,
    QueryMessage,
    QueryTaskInfo,
    UserQuery,
)
from tasks.store.artifacts import ArtifactStore
from tasks.store.paths import OutputLayout, queries_relpath
from tasks.task_filtering import agent_task, execute
from tests.dental_policy import artifact
from tests.runtime import FIXTURE_DIR, SERVER, SIMULATION_TIME
from tests.tasks.test_task_filtering import AUTHORIZE, BOOK, SEED, _combo


def _query(task_artifact, query_id: str) -> UserQuery:
    task = task_artifact.payload
    return UserQuery(
        id=query_id,
        messages=(QueryMessage(content="I need a check-up."),),
        user_system_prompt="You are a user.",
        task_info=QueryTaskInfo(
            trajectory=task.trajectory,
            instruction=task.instruction,
            reason_for_call=task.reason_for_call,
            known_info="",
            trajectory_hash=task.trajectory_hash,
            combo_id=task.combo_id,
        ),
        environment=task.environment,
        expected_state_hash=task.expected_state_hash,
        lineage=QueryLineage(
            id=task_artifact.id, content_hash=task_artifact.content_hash
        ),
    )


def test_a_recorded_task_replays_to_its_hash_and_a_wrong_one_is_caught(
    tmp_path: Path, capsys
):
    out = tmp_path / "out"
    shutil.copytree(FIXTURE_DIR, out)
    confirmed = {**BOOK, "confirm": {"source": "literal", "value": True}}
    combo = _combo("ok", AUTHORIZE, ("book_appointment", confirmed))
    [(run, diff)] = execute(
        out,
        SERVER,
        [artifact("instance_combination", "ok", combo)],
        TaskFilterConfig(),
        SIMULATION_TIME,
        SEED,
    )
    good = agent_task(combo, run, diff, SIMULATION_TIME, SEED)
    wrong = good.model_copy(update={"expected_state_hash": "0" * 64})
    store = ArtifactStore(OutputLayout(out))
    lines = []
    for name, task in (("q-good", good), ("q-wrong", wrong)):
        made = artifact("agent_task", name, task)
        store.put(made, RunStamp())
        lines.append(_query(made, name).model_dump_json())
    (out / queries_relpath(SERVER)).parent.mkdir(parents=True)
    (out / queries_relpath(SERVER)).write_text("\n".join(lines) + "\n")

    assert main(["check-task", "q-good", "--output-dir", str(out)]) == 0
    assert capsys.readouterr().out.startswith("ok: q-good on DentalAppointments")
    assert main(["check-task", "q-wrong", "--output-dir", str(out)]) == 1
    printed = capsys.readouterr().out
    assert printed.startswith("MISMATCH: q-wrong")
    assert json.loads(printed.split("expected diff:", 1)[1]) == json.loads(
        diff.model_dump_json()
    )
    assert main(["check-task", "q-none", "--output-dir", str(out)]) == 2
    assert "no query 'q-none'" in capsys.readouterr().err

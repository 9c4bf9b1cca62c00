"""run.executor and run.work_pool: validation, and how items are split into batches."""

from __future__ import annotations

import pytest
import yaml

from schemas.artifact import WorkItem
from schemas.config import WorkPoolConfig
from tasks.pool import MAX_PARAMETER_BYTES, plan_batches
from tasks.store.config_loader import ConfigError, load_config
from tests.conftest import DEMO_CASSETTE, DEMO_CONFIG


def _load(tmp_path, **run):
    data = yaml.safe_load(DEMO_CONFIG.read_text())
    data["llm"]["cassette"] = str(DEMO_CASSETTE)
    data["run"].update(run)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def test_the_default_executor_is_local(tmp_path):
    assert _load(tmp_path).config.run.executor == "local"


@pytest.mark.parametrize(
    ("run", "key", "words"),
    [
        ({"executor": "pool"}, "run.executor", "'local' or 'work_pool'"),
        ({"work_pool": {"name": "a/b"}}, "run.work_pool.name", "not a name Prefect"),
        (
            {"work_pool": {"deployment": "items"}},
            "run.work_pool.deployment",
            "flow-name/",
        ),
        ({"work_pool": {"batch_size": 0}}, "run.work_pool.batch_size", "greater than"),
        ({"work_pool": {"timeout_s": 0}}, "run.work_pool.timeout_s", "greater than"),
        ({"work_pool": {"pool": "x"}}, "run.work_pool.pool", ""),
        (
            {"work_pool": {"heartbeat_s": 10, "lost_after_s": 15}},
            "run.work_pool",
            "at least twice heartbeat_s",
        ),
    ],
)
def test_bad_work_pool_settings_name_their_key(tmp_path, run, key, words):
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, **run)
    assert key in str(caught.value) and words in str(caught.value)


def _work(n: int, size: int = 10) -> WorkItem:
    return WorkItem(
        step="s07",
        item_key=f"i{n}",
        task="tasks.policy_generation:write_policy",
        params={"blob": "x" * size},
        code_version="v",
    )


def test_batches_hold_at_most_batch_size_items_in_order():
    works = [_work(n) for n in range(7)]
    assert plan_batches(works, WorkPoolConfig(batch_size=3)) == [
        [0, 1, 2],
        [3, 4, 5],
        [6],
    ]


def test_batches_stay_under_prefects_parameter_limit():
    big = MAX_PARAMETER_BYTES // 3
    works = [_work(n, big) for n in range(5)]
    batches = plan_batches(works, WorkPoolConfig(batch_size=50))
    assert [i for b in batches for i in b] == list(range(5))
    assert all(len(b) <= 2 for b in batches)

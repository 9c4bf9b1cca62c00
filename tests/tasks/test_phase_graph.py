"""Steps run in a graph of phases: each mode is a path through it."""

from __future__ import annotations

import pytest

from tasks.steps import (
    STEPS,
    Phase,
    PhaseGraphError,
    missing_prerequisites,
    phase_order,
    pipeline_steps,
    select_steps,
)

# The shape the coming modes take: single-domain tasks run before fusion in "both".
GRAPH = (
    Phase("environments", ("s01", "s02")),
    Phase(
        "fusion",
        ("s04",),
        after=("environments", "single"),
        modes=frozenset({"cross_domain", "both"}),
    ),
    Phase(
        "single", ("s03",), after=("environments",), modes=frozenset({"single", "both"})
    ),
    Phase("rollouts", ("s05",), after=("fusion", "single")),
)


def test_a_phase_runs_after_the_phases_it_needs_whatever_the_declared_order():
    """Mode "both" runs single-domain work before fusion, declared first."""
    assert [p.name for p in phase_order("both", GRAPH)] == [
        "environments",
        "single",
        "fusion",
        "rollouts",
    ]


@pytest.mark.parametrize(
    ("mode", "steps"),
    [
        ("single", ["s01", "s02", "s03", "s05"]),
        ("cross_domain", ["s01", "s02", "s04", "s05"]),
        ("both", ["s01", "s02", "s03", "s04", "s05"]),
    ],
)
def test_each_mode_is_a_path_through_the_graph(mode, steps):
    """A phase off a mode's path is skipped, and phases after it still run."""
    assert [s.id for s in pipeline_steps(mode, GRAPH)] == steps


def test_a_cycle_or_an_unknown_phase_or_step_is_named():
    """A broken graph fails loudly with the phases involved."""
    cycle = (Phase("a", ("s01",), after=("b",)), Phase("b", ("s02",), after=("a",)))
    with pytest.raises(PhaseGraphError, match="a, b depend on each other"):
        phase_order("both", cycle)
    with pytest.raises(PhaseGraphError, match="unknown phase"):
        phase_order("both", (Phase("a", ("s01",), after=("nowhere",)),))
    with pytest.raises(PhaseGraphError, match="unknown step s77"):
        pipeline_steps("both", (Phase("a", ("s77",)),))


def test_the_pipeline_runs_every_catalogued_step_once():
    """Mode "both" runs every step of the catalogue once: the environments,
    then the single-domain tasks, then the cross-domain fusion, then (when
    asked for: an optional phase) rollouts and evaluation."""
    both = select_steps(optional=True)
    assert sorted(s.id for s in both) == sorted(s.id for s in STEPS)
    assert len(set(both)) == len(both)
    assert [s.id for s in both][-2:] == ["r01", "r02"]
    assert {s.id for s in select_steps()} == {s.id for s in STEPS} - {"r01", "r02"}
    assert [s.id for s in select_steps(start="r01")] == ["r01", "r02"]
    assert [s.id for s in select_steps(start="s03", until="s05")] == [
        "s03",
        "s04",
        "s05",
    ]


# Fusion reads what single-domain task work made, as s11 reads s16's results.
USES = (
    Phase("environments", ("s01", "s02")),
    Phase(
        "single", ("s03",), after=("environments",), modes=frozenset({"single", "both"})
    ),
    Phase(
        "fusion",
        ("s04", "s05"),
        after=("single",),
        modes=frozenset({"cross_domain", "both"}),
        uses=("single",),
    ),
)


def test_cross_domain_alone_refuses_when_single_domain_work_is_missing():
    """A mode that skips a phase whose outputs it reads needs them from an
    earlier run; the message names the phase, its last step and the modes that
    make it. `both` makes them itself, and once they exist the run may start."""
    steps = pipeline_steps("cross_domain", USES)
    problems = missing_prerequisites("cross_domain", lambda name: False, steps, USES)
    assert len(problems) == 1
    assert "outputs of the single phase (s03-s03)" in problems[0]
    assert "no finished s03_entity_graph" in problems[0]
    assert "task_mode both or single first" in problems[0]
    done = {"s03_entity_graph"}
    assert missing_prerequisites("cross_domain", done.__contains__, steps, USES) == []
    both = pipeline_steps("both", USES)
    assert missing_prerequisites("both", lambda name: False, both, USES) == []
    # a run that selects only environment steps reads nothing from "single"
    only_env = steps[:2]
    assert missing_prerequisites("cross_domain", lambda n: False, only_env, USES) == []


@pytest.mark.parametrize(
    ("mode", "has_s14"), [("single", True), ("both", True), ("cross_domain", False)]
)
def test_task_templates_run_after_the_environments_in_single_and_both(mode, has_s14):
    """s14 is on the single-domain path only; the environments always come first."""
    ids = [s.id for s in select_steps(mode=mode)]
    assert ids[:9] == ["s01", "s02", "s03", "s04", "s05", "s06", "s07", "s08", "s09"]
    assert ("s14" in ids) is has_s14
    if has_s14:
        assert ids.index("s14") > ids.index("s09")


def test_a_range_naming_a_step_off_the_modes_path_is_refused():
    """--from s14 in cross_domain mode names the mode instead of an index error."""
    from tasks.steps import UnknownStep

    with pytest.raises(UnknownStep, match="not on the path of mode 'cross_domain'"):
        select_steps(start="s14", mode="cross_domain")

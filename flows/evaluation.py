"""Flow of r02 evaluation: score every rollout, then summarise the run.

Input: the rollout files `rollouts/*.jsonl` of this output location (r01's, or
your own harness's in the same record format), the queries and validated tasks
they answer, and the policies. A line that is not a rollout (a truncated last
line, broken JSON) or a rollout whose id matches no query is skipped, reported
as a failed item naming the file and line, and counted in the summary; nothing
else is lost. Output: `task_assertions` per task, an `evaluation_result` per
rollout and the `evaluation_summary`, exported as `evaluation/results.jsonl`
and `evaluation/summary.json`, and the report `evaluation/report.md` with its
plots (also the run's markdown artifact in the Prefect UI).
"""

from __future__ import annotations

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from schemas.artifact import FailedItem
from schemas.evaluation import EvaluationResult, EvaluationSummary
from schemas.report import StepReport
from schemas.run import RunRef
from schemas.validated_task import AgentTask, UserQuery
from tasks import evaluation as r02
from tasks import rollout_plan as plan
from tasks.core.rollout_records import Skipped, join_queries, unique_rollouts
from tasks.evaluation_report import write_evaluation_report
from tasks.items import dependency_failed
from tasks.rollout_files import read_all, rollout_files
from tasks.step_run import StepRun
from tasks.store.paths import (
    EVALUATION_RESULTS_RELPATH,
    EVALUATION_SUMMARY_RELPATH,
    OutputLayout,
)

NOTHING_TO_EVALUATE = (
    "there are no rollouts to evaluate here: run r01 first (agentskiller rollout "
    "--config ...) or name your own rollout files in "
    "steps.r02_evaluation.rollout_files"
)


@flow(name="r02-evaluation", validate_parameters=False)
def evaluate_rollouts(run: RunRef) -> StepReport:
    """Evaluate every rollout in this output location; summarise pass^k."""
    step = StepRun("r02", run)
    cfg = step.config.steps.r02_evaluation
    store = step.store
    tasks = {
        t.id: t
        for name in plan.finished(step, plan.TASK_STEPS)
        for t in store.load_outputs(name, AgentTask, kind="agent_task")
    }
    task_of = {
        q.payload.id: tasks[q.payload.lineage.id]
        for name in plan.finished(step, plan.QUERY_STEPS)
        for q in store.load_outputs(name, UserQuery, kind="user_query")
        if q.payload.lineage.id in tasks
    }
    files, missing = rollout_files(store, cfg.rollout_files)
    for problem in missing:
        step.fail(dependency_failed("r02", problem.split(" ", 1)[0], problem))
    if not files:
        step.fail(dependency_failed("r02", "rollouts", NOTHING_TO_EVALUATE))
    rollouts, skipped = read_all(files)
    if not rollouts and not skipped.counts:
        return step.finish(outputs=[], exports={}, note="no rollouts to evaluate")
    joined = join_queries(unique_rollouts(rollouts, skipped), task_of)
    skipped.extend(joined.skipped)
    step.fail(*_skipped_items(skipped))
    judged_tasks = {t.id: t for t, _ in joined.pairs}
    assertions = {
        a.id: a
        for o in step.run_items(
            plan.plan_assertions(step, cfg, list(judged_tasks.values()))
        )
        for a in o.artifacts
    }
    outcomes = step.run_items(
        plan.plan_evaluations(
            step,
            cfg,
            [r for _, r in joined.pairs],
            task_of,
            {t.id: assertions.get(t.payload.combo_id) for t in judged_tasks.values()},
            plan.policies_by_environment(step),
        )
    )
    results = [a for o in outcomes for a in o.artifacts]
    summaries = [
        a
        for o in step.run_items(
            [
                step.item(
                    "summary",
                    r02.summarize_results,
                    inputs={"results": results},
                    params={"skipped": dict(skipped.counts)},
                )
            ]
        )
        for a in o.artifacts
    ]
    exports = {}
    for summary in summaries:
        exports[EVALUATION_RESULTS_RELPATH] = (
            summary,
            r02.results_jsonl([r.payload for r in results]),
        )
        exports[EVALUATION_SUMMARY_RELPATH] = (
            summary,
            summary.payload.model_dump(mode="json"),
        )
    for summary in summaries:
        _publish(store.layout, summary.payload, [r.payload for r in results])
    overall = summaries[0].payload.overall if summaries else None
    return step.finish(
        outputs=[*assertions.values(), *results, *summaries],
        exports=exports,
        note=_note(len(results), overall, sum(skipped.counts.values())),
        inputs=len(rollouts),
        produced=len(results),
    )


def _publish(
    layout: OutputLayout, summary: EvaluationSummary, results: list[EvaluationResult]
) -> None:
    """Write `evaluation/report.md` with its plots, and show the report in the
    Prefect UI as the run's markdown artifact."""
    written = write_evaluation_report(layout, summary, results)
    report = written[-1].read_text()
    create_markdown_artifact(
        markdown=report,
        key="evaluation-report",
        description="pass@1, pass^k and pass@k of the rollouts, per domain",
    )


def _skipped_items(skipped: Skipped) -> list[FailedItem]:
    return [
        FailedItem(
            step="r02",
            item_key=problem.split(": ", 1)[0],
            reason="validation_failed",
            message=f"skipped: {problem}",
        )
        for problem in skipped.problems
    ]


def _note(results: int, overall, skipped: int) -> str:
    if overall is None:
        return f"{results} rollout(s) evaluated; {skipped} input item(s) skipped"
    k = max(overall.pass_hat_k, default=1)
    return (
        f"{results} rollout(s) evaluated: pass@1 {overall.pass_at_1:.3f}, "
        f"pass^{k} {overall.pass_hat_k.get(k, 0.0):.3f}; {skipped} input item(s) "
        "skipped"
    )

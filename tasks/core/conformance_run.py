"""Running the s09 conformance suite against an environment.

Inputs: a `SuiteTarget` (the environment seen through a narrow protocol: calls,
state hashes, crashes, the session's bound user, a digest of the data files), the
`ConformanceSuite`, the `EnvironmentSpec` and the base rows to sample arguments
from. Output: one `CheckOutcome` per check (all but `signatures`), each failure a
model-readable sentence naming the call, its arguments and, for crashes, the
traceback tail. Authorization tries core rows in seeded order until one binds;
user tools then run `samples` sampled calls each in that session (confirmation
tools first without `confirm`); every tool that needs authorization is called in
a fresh session; the whole call sequence is replayed in two fresh sessions. No
side effects beyond the calls made on the target.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from schemas.environment import (
    CONFIRM_PARAMETER,
    EnvironmentSpec,
    ToolCrash,
    ToolResult,
    ToolSpec,
)
from schemas.server import CheckOutcome, ConformanceSuite
from tasks.core.conformance_samples import Rows, sample_arguments

MAIN_SESSION = "conformance"
UNKNOWN_ID = "no-such-id-0000"
MAX_AUTH_CANDIDATES = 200
MAX_PROBLEMS_SHOWN = 3
TRACEBACK_LINES = 12
VALUE_CHARS = 300


class SuiteTarget(Protocol):
    """What the suite needs from an environment."""

    def call(self, session: str, tool: str, arguments: Mapping[str, Any]) -> ToolResult:
        """Run one tool call in a session."""
        ...

    def state_hash(self, session: str) -> str:
        """The session's state hash."""
        ...

    def base_hash(self) -> str:
        """The base database's state hash."""
        ...

    def files_hash(self) -> str:
        """A hash over the data files the base database was loaded from."""
        ...

    def crashes(self) -> Sequence[ToolCrash]:
        """Every crash of a tool body so far, oldest first."""
        ...

    def authorized_id(self, session: str) -> Any:
        """The core id bound to the session, or None."""
        ...


def run_suite(
    target: SuiteTarget, suite: ConformanceSuite, spec: EnvironmentSpec, rows: Rows
) -> tuple[CheckOutcome, ...]:
    """Run every check but `signatures` (the harness decides that one).

    Args:
        target: The environment under test.
        suite: The suite.
        spec: The environment spec.
        rows: Table name -> base rows (sampling source).

    Returns:
        One outcome per check, in suite order.
    """
    return _Runner(target, suite, spec, rows).run()


class _Runner:
    def __init__(
        self,
        target: SuiteTarget,
        suite: ConformanceSuite,
        spec: EnvironmentSpec,
        rows: Rows,
    ) -> None:
        self.target, self.suite, self.spec, self.rows = target, suite, spec, rows
        self.tools = {tool.name: tool for tool in spec.tools}
        self.problems: dict[str, list[str]] = {c.id: [] for c in suite.checks}
        self.main: list[tuple[str, dict[str, Any], ToolResult]] = []

    def run(self) -> tuple[CheckOutcome, ...]:
        base, files = self.target.base_hash(), self.target.files_hash()
        user, authorized = self._authorize()
        for tool in self.spec.tools:
            if tool.is_authorization:
                self._auth_samples(tool)
            elif authorized:
                self._samples(tool, user)
            else:
                reason = "not run: no session could be authorized"
                for kind in ("valid_calls", "read_only", "confirmation"):
                    self._fail(f"{kind}/{tool.name}", reason)
            if tool.name in self.suite.auth_required:
                self._unauthorized(tool, user)
        self._isolation(base, files)
        self._determinism()
        return tuple(
            CheckOutcome(
                id=c.id,
                kind=c.kind,
                tool=c.tool,
                passed=not self.problems[c.id],
                message=_joined(self.problems[c.id]),
            )
            for c in self.suite.checks
            if c.kind != "signatures"
        )

    def _fail(self, check_id: str, problem: str) -> None:
        if check_id in self.problems:
            self.problems[check_id].append(problem)

    def _call(
        self, session: str, tool: str, arguments: Mapping[str, Any]
    ) -> tuple[ToolResult, ToolCrash | None]:
        before = len(self.target.crashes())
        result = self.target.call(session, tool, arguments)
        crashes = self.target.crashes()
        crash = crashes[-1] if len(crashes) > before else None
        if session == MAIN_SESSION:
            self.main.append((tool, dict(arguments), result))
        return result, crash

    def _crashed(
        self, check_id: str, tool: str, args: Mapping, crash: ToolCrash
    ) -> None:
        if crash.rule in ("read_only", "confirmation"):
            # The runtime names the rule it enforced; its check owns the crash.
            check_id = f"{crash.rule}/{tool}"
        tail = "\n".join(crash.traceback.rstrip().splitlines()[-TRACEBACK_LINES:])
        self._fail(
            check_id,
            f"{_show_call(tool, args)} crashed: {crash.error_type}: {crash.message}"
            + (f"\n{tail}" if tail else ""),
        )

    def _authorize(self) -> tuple[Any, bool]:
        name = self.spec.auth_tool
        if name is None:
            return None, True
        tool, key, check = self.tools[name], self.spec.core_key, "authorization"
        rng = random.Random(f"{self.suite.seed}:{name}:authorize")
        if key in tool.parameters.get("properties", {}):
            session = "authorization/unknown"
            args = {
                **sample_arguments(tool, self.spec, self.rows, user_id=None, rng=rng),
                key: UNKNOWN_ID,
            }
            result, crash = self._call(session, name, args)
            if crash is not None:
                self._crashed(check, name, args, crash)
            elif not result.is_error or self.target.authorized_id(session) is not None:
                self._fail(
                    check,
                    f"{_show_call(name, args)} accepted an id that no "
                    f"{self.spec.core_entity} has; it must fail with a tool error",
                )
        ids = [row.get(key) for row in self.rows.get(self.spec.core_entity, ())]
        rng.shuffle(ids)
        last = "the table is empty"
        for candidate in ids[:MAX_AUTH_CANDIDATES]:
            args = sample_arguments(tool, self.spec, self.rows, user_id=None, rng=rng)
            if key in tool.parameters.get("properties", {}):
                args[key] = candidate
            result, crash = self._call(MAIN_SESSION, name, args)
            if crash is not None:
                self._crashed(check, name, args, crash)
                return None, False
            if result.is_error:
                last = result.error or ""
                continue
            bound = self.target.authorized_id(MAIN_SESSION)
            if bound is None:
                self._fail(
                    check,
                    f"{_show_call(name, args)} succeeded but bound "
                    "nobody; call env.authorize(<id>) and return its result",
                )
                return None, False
            return bound, True
        self._fail(
            check,
            f"{name} rejected every {self.spec.core_entity} tried "
            f"({min(len(ids), MAX_AUTH_CANDIDATES)}); at least one must be "
            f"authorized. Last error: {last}",
        )
        return None, False

    def _auth_samples(self, tool: ToolSpec) -> None:
        for k in range(self.suite.samples):
            rng = random.Random(f"{self.suite.seed}:{tool.name}:{k}")
            args = sample_arguments(tool, self.spec, self.rows, user_id=None, rng=rng)
            session = f"valid_calls/{tool.name}/{k}"
            _, crash = self._call(session, tool.name, args)
            if crash is not None:
                self._crashed(f"valid_calls/{tool.name}", tool.name, args, crash)
            if self.target.state_hash(session) != self.target.base_hash():
                self._fail(
                    f"read_only/{tool.name}",
                    f"{_show_call(tool.name, args)} changed the state hash",
                )

    def _samples(self, tool: ToolSpec, user: Any) -> None:
        for k in range(self.suite.samples):
            rng = random.Random(f"{self.suite.seed}:{tool.name}:{k}")
            args = sample_arguments(tool, self.spec, self.rows, user_id=user, rng=rng)
            if tool.needs_confirmation:
                before = self.target.state_hash(MAIN_SESSION)
                result, crash = self._call(MAIN_SESSION, tool.name, args)
                if crash is not None:
                    self._crashed(f"confirmation/{tool.name}", tool.name, args, crash)
                elif self.target.state_hash(MAIN_SESSION) != before:
                    self._fail(
                        f"confirmation/{tool.name}",
                        f"{_show_call(tool.name, args)}"
                        f" changed the state without {CONFIRM_PARAMETER}=true",
                    )
                args = {**args, CONFIRM_PARAMETER: True}
            before = self.target.state_hash(MAIN_SESSION)
            result, crash = self._call(MAIN_SESSION, tool.name, args)
            if crash is not None:
                self._crashed(f"valid_calls/{tool.name}", tool.name, args, crash)
            changed = self.target.state_hash(MAIN_SESSION) != before
            if tool.effect == "read" and changed:
                self._fail(
                    f"read_only/{tool.name}",
                    f"{_show_call(tool.name, args)} "
                    f"changed the state hash (result: {_short(result.content)})",
                )

    def _unauthorized(self, tool: ToolSpec, user: Any) -> None:
        session = f"unauthorized/{tool.name}"
        rng = random.Random(f"{self.suite.seed}:{tool.name}:unauthorized")
        args = sample_arguments(tool, self.spec, self.rows, user_id=user, rng=rng)
        if tool.needs_confirmation:
            args[CONFIRM_PARAMETER] = True
        result, crash = self._call(session, tool.name, args)
        check = f"unauthorized/{tool.name}"
        if crash is not None:
            self._crashed(check, tool.name, args, crash)
        elif not result.is_error:
            self._fail(
                check,
                f"{_show_call(tool.name, args)} succeeded before any "
                f"authorization (result: {_short(result.content)}); call "
                "env.require_auth() first",
            )
        if self.target.state_hash(session) != self.target.base_hash():
            self._fail(
                check,
                f"{_show_call(tool.name, args)} changed the state before authorization",
            )

    def _isolation(self, base: str, files: str) -> None:
        if self.target.base_hash() != base:
            self._fail(
                "isolation",
                "the base database changed; tools must write "
                "only through env.table(...) of their session",
            )
        if self.target.files_hash() != files:
            self._fail(
                "isolation", "the data files changed; tools must never write files"
            )
        if self.target.state_hash("isolation/fresh") != base:
            self._fail(
                "isolation",
                "a fresh session does not start from the base "
                "state (module-level state leaks between sessions)",
            )

    def _determinism(self) -> None:
        replays = []
        for session in ("determinism/a", "determinism/b"):
            results = [self.target.call(session, t, a) for t, a, _ in self.main]
            replays.append((results, self.target.state_hash(session)))
        expected = [result for _, _, result in self.main]
        for results, _ in replays:
            for index, (got, want) in enumerate(zip(results, expected, strict=True)):
                if got != want:
                    tool, args, _ = self.main[index]
                    self._fail(
                        "determinism",
                        f"call #{index + 1} "
                        f"{_show_call(tool, args)} returned {_short(want)} "
                        f"first and {_short(got)} in a fresh session",
                    )
                    return
        final = self.target.state_hash(MAIN_SESSION)
        if any(digest != final for _, digest in replays):
            self._fail(
                "determinism",
                "replaying the same calls in a fresh session "
                "reached a different state hash",
            )


def _show_call(tool: str, arguments: Mapping[str, Any]) -> str:
    return f"{tool}({_short(dict(arguments))})"


def _short(value: Any) -> str:
    if isinstance(value, ToolResult):
        value = value.model_dump(mode="json", exclude_defaults=True)
    text = json.dumps(value, default=repr, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + "..."


def _joined(problems: list[str]) -> str:
    shown = problems[:MAX_PROBLEMS_SHOWN]
    more = len(problems) - len(shown)
    return "\n".join(shown) + (f"\n... and {more} more" if more > 0 else "")

"""Ending a run promptly on Ctrl-C or SIGTERM.

Input: the signals SIGINT (Ctrl-C) and SIGTERM (what Docker, Kubernetes and
systemd send). Output: `InterruptGuard`, a context manager for the main thread of
`agentskiller run`. Side effects while it is active: the first signal runs the
registered `on_signal` callbacks at once (they stop child processes such as
sandboxed programs, so the steps waiting on them return) and raises
`KeyboardInterrupt` in the main thread, where the pipeline records the interruption
and writes its report; if the run has not ended `grace_s` seconds later (a model
call still in flight, say), or on a second signal, the `on_force` callbacks run
(they write what report they can and stop every process the run started) and the
process exits with 128 + the signal number. Finished items are already in the store
and every model call already in the ledger, so nothing finished is lost either way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import ClassVar

from prefect.exceptions import TerminationSignal
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.runtime.sandbox_launch import stop_running

DEFAULT_GRACE_S = 15.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class InterruptGuard:
    """Turns SIGINT/SIGTERM into an orderly, bounded stop of the run.

    Args:
        grace_s: Seconds an orderly stop may take before the exit is forced.
    """

    active: ClassVar[InterruptGuard | None] = None

    def __init__(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        self.grace_s = grace_s
        self.received: signal.Signals | None = None
        self._on_signal: list[Callable[[], None]] = []
        self._on_force: list[Callable[[], None]] = []
        self._done = threading.Event()
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> int:
        """128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + int(self.received or signal.SIGINT)

    def on_signal(self, callback: Callable[[], None]) -> None:
        """Run `callback` as soon as the first signal arrives."""
        self._on_signal.append(callback)

    def on_force(self, callback: Callable[[], None]) -> None:
        """Run `callback` before a forced exit (last registered runs first)."""
        self._on_force.append(callback)

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        InterruptGuard.active = self
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        InterruptGuard.active = None
        for number, previous in self._previous.items():
            signal.signal(number, previous)  # type: ignore[arg-type]

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self._force()
        self.begin(signal.Signals(number))
        raise KeyboardInterrupt

    def begin(self, received: signal.Signals) -> None:
        """Start an orderly stop: callbacks now, a forced exit after the grace."""
        if self.received is not None:
            return
        self.received = received
        print(
            f"\n{self.received.name} received: stopping the run (finished items are "
            "kept); send it again to stop at once",
            file=sys.stderr,
            flush=True,
        )
        for callback in self._on_signal:
            with contextlib.suppress(Exception):
                callback()
        threading.Thread(target=self._watchdog, daemon=True).start()

    def _watchdog(self) -> None:
        if not self._done.wait(self.grace_s):
            self._force()

    def _force(self) -> None:
        if self._done.is_set():
            return
        for callback in reversed(self._on_force):
            with contextlib.suppress(Exception):
                callback()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(self.exit_code)


def signal_name(exc: BaseException) -> str:
    """The signal behind an interruption: Ctrl-C, or Prefect's SIGTERM bridge."""
    if isinstance(exc, TerminationSignal):
        return signal.Signals(exc.signal).name
    return signal.SIGINT.name


class StoppingTaskRunner(ThreadPoolTaskRunner):
    """A thread-pool task runner that stops the run's child processes when a flow
    is interrupted.

    Prefect turns SIGTERM into `TerminationSignal` inside the innermost flow (its
    own handler replaces ours there) and then cancels that flow's task runner;
    Ctrl-C arrives as `KeyboardInterrupt`. Either way the runner's `cancel_all`
    runs while the interruption propagates, and the threads it must wait for are
    usually blocked on child processes: stopping those lets the flow end in
    seconds instead of after the children's own timeouts.
    """

    def cancel_all(self) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, KeyboardInterrupt | TerminationSignal):
            guard = InterruptGuard.active
            if guard is not None:
                guard.begin(signal.Signals[signal_name(exc)])
            with contextlib.suppress(Exception):
                stop_running()
        super().cancel_all()

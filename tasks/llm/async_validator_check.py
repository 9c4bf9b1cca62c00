"""instructor's async-validator check, run once per response model per process.

Input: none. Output: `check_response_models_once()`, which makes instructor 1.17's
`reject_async_validators` remember the response models it has already passed.
Side effects: replaces that function in the two instructor modules it is looked up
from (idempotent); called when an `InstructorLLM` is built, never at import time.

instructor calls the check seven times per structured call (patch, twice in each of
its two `prepare_response_model` calls, retry, parse), and each time it walks the
response model's whole class tree, reading every attribute of every class in every
nested model's MRO, pydantic's `BaseModel` included. Measured on s02's answer
model: 0.8 ms of CPU per call, a third of what instructor, openai and the
transport spend on it. A class that passed once passes again (its attributes are
those it was built with), so only passes are remembered; a model that has async
validators still raises on every call, and anything unhashable is checked as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import instructor.v2.core.patch as _patch
import instructor.v2.validation.async_validators as _validators

_Check = Callable[[Any], None]

_LOCK = threading.Lock()


def check_response_models_once() -> None:
    """Make instructor check each response model for async validators once."""
    with _LOCK:
        current = _validators.reject_async_validators
        if getattr(current, "_checks_once", False):
            return
        remembering = _remembering(current)
        _validators.reject_async_validators = remembering
        # `patch` imported the function by name; the other callers import it from
        # `_validators` at call time.
        if _patch.reject_async_validators is current:
            _patch.reject_async_validators = remembering


def _remembering(check: _Check) -> _Check:
    passed: set[Any] = set()  # response models are few: classes made once

    def reject_async_validators(response_model: Any) -> None:
        try:
            if response_model in passed:
                return
        except TypeError:  # unhashable: no memory, check as instructor does
            check(response_model)
            return
        check(response_model)  # raises for a model with async validators
        passed.add(response_model)

    reject_async_validators._checks_once = True  # type: ignore[attr-defined]
    reject_async_validators.__doc__ = check.__doc__
    return reject_async_validators

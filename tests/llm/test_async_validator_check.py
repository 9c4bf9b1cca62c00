"""instructor's async-validator check runs once per response model that passes it."""

from __future__ import annotations

import instructor.v2.core.patch as instructor_patch
import instructor.v2.validation.async_validators as validators
import pytest
from pydantic import BaseModel

from tasks.llm.async_validator_check import check_response_models_once


class _Plain(BaseModel):
    name: str


class _WithAsyncValidator(BaseModel):
    name: str

    @validators.async_field_validator("name")
    async def _check_name(cls, value: str) -> str:  # noqa: N805
        return value


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The models instructor's own check walks, with the once-only check on."""
    walked: list[object] = []
    original = validators.reject_async_validators

    def walking(response_model: object) -> None:
        walked.append(response_model)
        original(response_model)

    monkeypatch.setattr(validators, "reject_async_validators", walking)
    monkeypatch.setattr(instructor_patch, "reject_async_validators", walking)
    check_response_models_once()
    return walked


def test_a_passing_model_is_walked_once_from_every_caller(walks: list) -> None:
    """Both places instructor looks the check up from remember a passing model."""
    for _ in range(3):
        validators.reject_async_validators(_Plain)
        instructor_patch.reject_async_validators(_Plain)
    assert walks == [_Plain]


def test_a_model_with_async_validators_is_refused_every_time(walks: list) -> None:
    """Failures are not remembered: each call raises instructor's error."""
    for _ in range(2):
        with pytest.raises(ValueError, match="async validators are not supported"):
            validators.reject_async_validators(_WithAsyncValidator)
    assert walks == [_WithAsyncValidator, _WithAsyncValidator]


def test_installing_twice_wraps_once(walks: list) -> None:
    """A second client does not stack a second memory on the first."""
    installed = validators.reject_async_validators
    check_response_models_once()
    assert validators.reject_async_validators is installed
    assert instructor_patch.reject_async_validators is installed

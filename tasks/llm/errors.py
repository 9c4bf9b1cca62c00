"""Typed errors raised by the LLM layer.

Inputs: the facts of a failed call (call key, endpoint, attempts, cause). Output:
exception classes whose `str()` is a complete sentence a user can act on, each
naming the `FailedItem` reason it is recorded as (`failure_reason`) and whether a
plain re-run may fix it (`retryable`). No side effects.

Endpoint failures are told apart because their fixes differ: a timeout needs a
larger `llm.timeout_s`, a refused connection a right base URL or a running server,
an HTTP error whatever its status and body say, a rate limit patience or less
concurrency. All of them subclass `LLMUnavailable`, so callers that catch the
general case keep working.
"""

from __future__ import annotations

from typing import ClassVar

from schemas.artifact import FailureReason

BODY_SNIPPET_CHARS = 300
"""How much of an HTTP error body a message quotes."""

_CHECK_ENDPOINT = (
    "Check that the base URL is right (OPENAI_BASE_URL or llm.roles.<role>.base_url), "
    "that the network reaches it, and that the model server is running"
)


class LLMError(Exception):
    """Base of every error the LLM layer raises on purpose."""

    failure_reason: ClassVar[FailureReason] = "error"
    retryable: bool = False
    """Whether a plain re-run may fix it (the `FailedItem.retryable` it becomes)."""


class CassetteFormatError(LLMError, ValueError):
    """A cassette file cannot be read; the message names the file and the call key."""


class CassetteMiss(LLMError):
    """Replay mode was asked for a call the cassette does not hold."""

    failure_reason: ClassVar[FailureReason] = "cassette_miss"
    retryable: bool = True

    def __init__(self, call_key: str, attempt: int, cassette: str) -> None:
        self.call_key = call_key
        self.attempt = attempt
        self.cassette = cassette
        super().__init__(
            f"cassette {cassette} has no answer for call key {call_key!r} attempt "
            f"{attempt} (replay mode answers only recorded calls; re-record with "
            "llm.mode: record)"
        )


class LLMUnavailable(LLMError):
    """The model endpoint gave no usable answer (base of the specific kinds)."""

    failure_reason: ClassVar[FailureReason] = "llm_unavailable"
    retryable: bool = True

    def __init__(
        self, call_key: str, endpoint: str, cause: str, *, advice: str = ""
    ) -> None:
        self.call_key = call_key
        self.endpoint = endpoint
        self.cause = cause
        advice = advice or (
            f"{_CHECK_ENDPOINT}; transient failures were already retried."
        )
        super().__init__(
            f"LLM endpoint {endpoint} failed for call key {call_key!r}: {cause}. "
            f"{advice}"
        )


class LLMTimeout(LLMUnavailable):
    """The endpoint accepted the request but did not answer within the timeout."""

    failure_reason: ClassVar[FailureReason] = "llm_timeout"

    def __init__(
        self, call_key: str, endpoint: str, *, timeout_s: float, tries: int
    ) -> None:
        self.timeout_s = timeout_s
        self.tries = tries
        super().__init__(
            call_key,
            endpoint,
            f"no answer within llm.timeout_s = {timeout_s:g} s on any of {tries} "
            "tries (the server is reachable but slow)",
            advice="A slow server (a local model on a CPU, long answers) needs more "
            "time: raise llm.timeout_s in the config, or lower max_tokens.",
        )


class LLMUnreachable(LLMUnavailable):
    """No connection could be made (refused, unknown host, connect timeout)."""

    failure_reason: ClassVar[FailureReason] = "llm_unreachable"

    def __init__(
        self, call_key: str, endpoint: str, *, detail: str, tries: int
    ) -> None:
        self.tries = tries
        super().__init__(
            call_key,
            endpoint,
            f"no connection after {tries} tries ({detail})",
            advice=f"{_CHECK_ENDPOINT}.",
        )


class LLMHTTPError(LLMUnavailable):
    """The endpoint answered with an HTTP error status (other than a rate limit)."""

    failure_reason: ClassVar[FailureReason] = "llm_http_error"

    def __init__(
        self,
        call_key: str,
        endpoint: str,
        *,
        status: int,
        body: str,
        tries: int,
        advice: str,
    ) -> None:
        self.status = status
        self.body = body
        self.tries = tries
        # server-side errors may pass; a refused request needs a change first
        self.retryable = status >= 500 or status in (408, 409)
        tried = f" after {tries} tries" if tries > 1 else ""
        super().__init__(
            call_key,
            endpoint,
            f"HTTP {status}{tried}: {snippet(body) or '(empty body)'}",
            advice=advice,
        )


class LLMRateLimited(LLMUnavailable):
    """The endpoint kept answering HTTP 429 after every retry."""

    failure_reason: ClassVar[FailureReason] = "llm_rate_limited"

    def __init__(self, call_key: str, endpoint: str, *, body: str, tries: int) -> None:
        self.body = body
        self.tries = tries
        super().__init__(
            call_key,
            endpoint,
            f"rate limited (HTTP 429) on all {tries} tries: "
            f"{snippet(body) or '(empty body)'}",
            advice="Wait and run again (finished items are kept), or lower "
            "llm.max_concurrency, or give the retries more room with "
            "llm.transport_retries and llm.retry_backoff_max_s.",
        )


class InvalidModelOutput(LLMError):
    """The model's answer still failed validation after every re-ask."""

    failure_reason: ClassVar[FailureReason] = "invalid_output"

    def __init__(
        self,
        call_key: str,
        attempts: int,
        last_error: str,
        last_answer: str | None = None,
    ) -> None:
        self.call_key = call_key
        self.attempts = attempts
        self.last_error = last_error
        self.last_answer = last_answer
        super().__init__(self._describe())

    def _describe(self) -> str:
        return (
            f"model output for call key {self.call_key!r} was still invalid after "
            f"{self.attempts} attempt(s); last validation error:\n{self.last_error}"
        )

    @property
    def summary(self) -> str:
        """One line for a failed item's message."""
        return (
            f"model output for {self.call_key!r} still invalid after "
            f"{self.attempts} attempt(s): {'; '.join(self.problems)}"
        )

    @property
    def problems(self) -> list[str]:
        """The listed problems of the last validation error (`- ...` lines), or the
        whole error as one problem when it lists none."""
        listed = [
            # pydantic appends " [type=value_error, ...]" to the last line
            line.strip()[2:].split(" [type=")[0].strip()
            for line in self.last_error.splitlines()
            if line.strip().startswith("- ")
        ]
        return listed or [self.last_error.strip()]


class ModelOutputTruncated(InvalidModelOutput):
    """The answer was cut off at the token limit; re-asking at that limit is futile.

    A subclass of `InvalidModelOutput` so every step that drops an invalid item
    drops a truncated one the same way; `last_answer` is None because the cut-off
    text is no basis for a fix-up call.
    """

    failure_reason: ClassVar[FailureReason] = "truncated"

    def __init__(
        self,
        call_key: str,
        attempts: int,
        *,
        role: str,
        max_tokens: int | None,
        completion_tokens: int | None,
    ) -> None:
        self.role = role
        self.max_tokens = max_tokens
        self.completion_tokens = completion_tokens
        setting = f"llm.roles.{role}.max_tokens"
        used = f" ({completion_tokens} tokens)" if completion_tokens else ""
        if max_tokens:
            text = (
                f"the answer was cut off at max_tokens = {max_tokens}{used}; raise "
                f"{setting} (or ask for a shorter answer)"
            )
        else:
            text = (
                f"the answer was cut off at the server's token limit{used}; set "
                f"{setting} above it, or raise the server's own limit"
            )
        super().__init__(call_key, attempts, text)

    def _describe(self) -> str:
        return self.summary

    @property
    def summary(self) -> str:
        return f"model output for call key {self.call_key!r} was cut off: " + (
            self.last_error
        )


def snippet(body: str, limit: int = BODY_SNIPPET_CHARS) -> str:
    """The first `limit` characters of a body, on one line."""
    flat = " ".join(body.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"

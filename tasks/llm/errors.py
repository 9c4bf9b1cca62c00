"""Typed errors raised by the LLM layer.

Inputs: the facts of a failed call (call key, endpoint, attempts, cause). Output:
exception classes whose `str()` is a complete sentence a user can act on. No side
effects.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base of every error the LLM layer raises on purpose."""


class CassetteFormatError(LLMError, ValueError):
    """A cassette file cannot be read; the message names the file and the call key."""


class CassetteMiss(LLMError):
    """Replay mode was asked for a call the cassette does not hold."""

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
    """The model endpoint could not be reached or refused the request."""

    def __init__(self, call_key: str, endpoint: str, cause: str) -> None:
        self.call_key = call_key
        self.endpoint = endpoint
        self.cause = cause
        super().__init__(
            f"LLM endpoint {endpoint} failed for call key {call_key!r}: {cause}. "
            "Check that the base URL is right (OPENAI_BASE_URL or "
            "llm.roles.<role>.base_url), that the network reaches it, and that the "
            "model server is running; transient failures were already retried."
        )


class InvalidModelOutput(LLMError):
    """The model's answer still failed validation after every re-ask."""

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
        super().__init__(
            f"model output for call key {call_key!r} was still invalid after "
            f"{attempts} attempt(s); last validation error:\n{last_error}"
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

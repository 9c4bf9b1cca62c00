"""httpx2 transport wrappers under the OpenAI client: retries, usage ledger, recording.

Inputs: requests from the openai client (carrying the AgentSkiller call-key, role and
prompt-turn headers) and an inner transport (`httpx2.HTTPTransport` for a real
endpoint, `ReplayTransport` for a cassette). Output: the inner transport's
responses, after transient failures were retried. Side effects: sleeping between
retries, appending `CallRecord`s to a `UsageLedger`, appending answers to a
cassette. The stack, outermost first, is
`RetryingTransport -> LedgerTransport -> [RecordingTransport] -> TruncationTransport
-> base`: the ledger sits inside the retry loop, so every HTTP try is one record
(with its `transport_try`) and `ledger.calls("ok")` counts only answered requests.
`TruncationTransport` makes an answer that used up the request's `max_tokens` say
`finish_reason: "length"` (llama.cpp's server says "tool_calls" even then), so
instructor reports it as incomplete instead of re-asking at the same limit, and a
recorded cassette keeps that fact for replay. The
AgentSkiller headers are sent on to the endpoint: OpenAI-compatible servers ignore
unknown headers, and the HTTP replay server needs them to find the answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any

import httpx2

from schemas.llm import (
    CallOutcome,
    CallRecord,
    CallSource,
    CassetteAnswer,
    ScriptedToolCall,
)
from tasks.llm.cassette import (
    FREE_FORM_HEADER,
    ROLE_HEADER,
    CassetteWriter,
    call_key_of,
    request_attempt,
    token_limit,
)
from tasks.llm.ledger import UsageLedger

TRY_EXTENSION = "agentskiller.transport_try"
"""Request extension holding the 0-based HTTP try index set by `RetryingTransport`."""

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_EXCEPTIONS: tuple[type[Exception], ...] = (
    httpx2.TimeoutException,
    httpx2.NetworkError,
    httpx2.RemoteProtocolError,
)


class RetryingTransport(httpx2.BaseTransport):
    """Retries connection errors, timeouts and HTTP 429/500/502/503/504.

    The delay honours `Retry-After` (seconds or an HTTP date) and `retry-after-ms`,
    capped at `backoff_max_s`; without them it is `backoff_s * 2**try`, capped.
    When the budget is spent, the last HTTP response is returned (the openai client
    turns it into an `APIStatusError`) and the last connection error is re-raised.
    """

    def __init__(
        self,
        inner: httpx2.BaseTransport,
        *,
        retries: int,
        backoff_s: float,
        backoff_max_s: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        on_attempt: Callable[[int, float, str], None] | None = None,
    ) -> None:
        """Wrap `inner`.

        Args:
            inner: The transport that sends each try.
            retries: Extra tries after the first one.
            backoff_s: First backoff delay.
            backoff_max_s: Upper bound of any delay, including `Retry-After`.
            sleep: Called with each delay (injected in tests).
            clock: Wall clock in epoch seconds, for `Retry-After` dates.
            on_attempt: Called as `(next_try, delay_s, reason)` before each retry.
        """
        self.inner = inner
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._clock = clock
        self._on_attempt = on_attempt

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        try_index = 0
        while True:
            request.extensions[TRY_EXTENSION] = try_index
            last_try = try_index >= self.retries
            try:
                response = self.inner.handle_request(request)
            except RETRY_EXCEPTIONS as exc:
                if last_try:
                    raise
                delay = self._backoff(try_index)
                reason = f"{type(exc).__name__}: {exc}"
            else:
                if last_try or response.status_code not in RETRY_STATUSES:
                    return response
                delay = self._retry_after(response.headers)
                if delay is None:
                    delay = self._backoff(try_index)
                reason = f"HTTP {response.status_code}"
                response.read()
                response.close()
            try_index += 1
            if self._on_attempt is not None:
                self._on_attempt(try_index, delay, reason)
            self._sleep(delay)

    def close(self) -> None:
        self.inner.close()

    def _backoff(self, try_index: int) -> float:
        return min(self.backoff_s * 2**try_index, self.backoff_max_s)

    def _retry_after(self, headers: httpx2.Headers) -> float | None:
        millis = headers.get("retry-after-ms")
        if millis is not None:
            try:
                return min(max(float(millis) / 1000, 0.0), self.backoff_max_s)
            except ValueError:
                pass
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = when.timestamp() - self._clock()
        return min(max(seconds, 0.0), self.backoff_max_s)


class TruncationTransport(httpx2.BaseTransport):
    """Marks a chat completion cut off at the request's `max_tokens` as "length".

    An answer counts as cut off when its `usage.completion_tokens` reaches the
    request's `max_tokens` (or `max_completion_tokens`), unless its tool call's
    arguments are a complete JSON object (an answer that ended exactly at the
    limit). Servers that report `finish_reason: "length"` themselves pass through
    unchanged.
    """

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        if response.status_code != 200 or not _is_chat(request):
            return response
        limit = token_limit(_request_json(request))
        if limit is None:
            return response
        response.read()
        payload = _response_json(response)
        choices = payload.get("choices")
        if not (isinstance(choices, list) and choices and isinstance(choices[0], dict)):
            return response
        if choices[0].get("finish_reason") == "length":
            return response
        usage = payload.get("usage")
        used = usage.get("completion_tokens") if isinstance(usage, dict) else None
        if not isinstance(used, int) or used < limit:
            return response
        if _complete_tool_call(choices[0]):
            return response
        choices[0]["finish_reason"] = "length"
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in ("content-length", "content-encoding")
        ]
        return httpx2.Response(
            response.status_code,
            headers=headers,
            content=json.dumps(payload).encode(),
            request=request,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


def _complete_tool_call(choice: dict[str, Any]) -> bool:
    message = choice.get("message")
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not (isinstance(calls, list) and calls and isinstance(calls[0], dict)):
        return False
    raw = (calls[0].get("function") or {}).get("arguments")
    try:
        return isinstance(json.loads(raw), dict) if isinstance(raw, str) else False
    except json.JSONDecodeError:
        return False


class LedgerTransport(httpx2.BaseTransport):
    """Times each chat-completion try and appends a `CallRecord` to the ledger.

    Call key and role come from the AgentSkiller headers (step is the call key's
    first `/` segment), model and re-ask attempt from the request body, token usage
    from the response body. Other routes pass through unrecorded.
    """

    def __init__(
        self,
        inner: httpx2.BaseTransport,
        ledger: UsageLedger,
        *,
        source: CallSource,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.inner = inner
        self.ledger = ledger
        self.source: CallSource = source
        self._clock = clock

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        if not _is_chat(request):
            return self.inner.handle_request(request)
        body = _request_json(request)
        call_key = call_key_of(request.headers) or "-"
        fields: dict[str, Any] = {
            "call_key": call_key,
            "step": call_key.split("/", 1)[0],
            "role": request.headers.get(ROLE_HEADER, "-"),
            "model": str(body.get("model", "")),
            "attempt": request_attempt(body, request.headers),
            "transport_try": int(request.extensions.get(TRY_EXTENSION, 0)),
            "source": self.source,
        }
        start = self._clock()
        try:
            response = self.inner.handle_request(request)
            response.read()
        except httpx2.TransportError:
            latency = max(self._clock() - start, 0.0)
            record = CallRecord(**fields, outcome="transport_error", latency_s=latency)
            self.ledger.add(record)
            raise
        latency = max(self._clock() - start, 0.0)
        payload = _response_json(response)
        usage = payload.get("usage") if response.status_code == 200 else None
        usage = usage if isinstance(usage, dict) else {}
        self.ledger.add(
            CallRecord(
                **fields,
                outcome=_outcome(response.status_code, payload),
                status_code=response.status_code,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                latency_s=latency,
            )
        )
        return response

    def close(self) -> None:
        self.inner.close()


class RecordingTransport(httpx2.BaseTransport):
    """Saves every successful chat-completion answer to a cassette writer.

    The answer is stored under the request's call key and re-ask attempt: the first
    tool call's arguments (parsed; kept verbatim when they are not a JSON object),
    else the message content; a free-form chat request (a rollout turn, marked
    by its header) keeps the text and every named tool call.
    """

    def __init__(self, inner: httpx2.BaseTransport, writer: CassetteWriter) -> None:
        self.inner = inner
        self.writer = writer

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        call_key = call_key_of(request.headers)
        if call_key is None or response.status_code != 200 or not _is_chat(request):
            return response
        response.read()
        free_form = FREE_FORM_HEADER.lower() in {k.lower() for k in request.headers}
        answer = _answer_from_completion(_response_json(response), free_form=free_form)
        if answer is not None:
            attempt = request_attempt(_request_json(request), request.headers)
            self.writer.append(call_key, attempt, answer)
        return response

    def close(self) -> None:
        self.inner.close()


def build_transport_stack(
    base: httpx2.BaseTransport,
    *,
    ledger: UsageLedger,
    source: CallSource,
    retries: int,
    backoff_s: float,
    backoff_max_s: float,
    writer: CassetteWriter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RetryingTransport:
    """Compose `Retrying -> Ledger -> [Recording] -> Truncation -> base` (see the
    module doc)."""
    inner: httpx2.BaseTransport = TruncationTransport(base)
    if writer is not None:
        inner = RecordingTransport(inner, writer)
    return RetryingTransport(
        LedgerTransport(inner, ledger, source=source),
        retries=retries,
        backoff_s=backoff_s,
        backoff_max_s=backoff_max_s,
        sleep=sleep,
    )


def _is_chat(request: httpx2.Request) -> bool:
    return request.method == "POST" and request.url.path.rstrip("/").endswith(
        "/chat/completions"
    )


def _request_json(request: httpx2.Request) -> dict[str, Any]:
    try:
        data = json.loads(request.read() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _response_json(response: httpx2.Response) -> dict[str, Any]:
    try:
        data = json.loads(response.content or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _outcome(status: int, payload: dict[str, Any]) -> CallOutcome:
    if status == 200:
        return "ok"
    error = payload.get("error")
    if (
        status == 404
        and isinstance(error, dict)
        and error.get("type") == "cassette_miss"
    ):
        return "cassette_miss"
    return "http_error"


def _answer_from_completion(
    payload: dict[str, Any], *, free_form: bool = False
) -> CassetteAnswer | None:
    choices = payload.get("choices") or []
    message = choices[0].get("message") if choices else None
    if not isinstance(message, dict):
        return None
    truncated = choices[0].get("finish_reason") == "length"
    tool_calls = message.get("tool_calls") or []
    if free_form:
        return _free_form_answer(message, tool_calls, truncated)
    if tool_calls:
        raw = str((tool_calls[0].get("function") or {}).get("arguments") or "")
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            arguments = None
        if isinstance(arguments, dict):
            return CassetteAnswer(tool_arguments=arguments, truncated=truncated)
        return CassetteAnswer(raw_arguments=raw, truncated=truncated)
    content = message.get("content")
    if not isinstance(content, str):
        return None
    return CassetteAnswer(content=content, truncated=truncated)


def _free_form_answer(
    message: dict[str, Any], tool_calls: list[Any], truncated: bool
) -> CassetteAnswer | None:
    """A chat answer as recorded: its text and every named tool call, in order."""
    calls: list[ScriptedToolCall] = []
    for call in tool_calls:
        function = call.get("function") or {}
        raw = str(function.get("arguments") or "")
        try:
            arguments = json.loads(raw)
        except json.JSONDecodeError:
            arguments = None
        name = str(function.get("name") or "")
        if isinstance(arguments, dict):
            calls.append(ScriptedToolCall(name=name, arguments=arguments))
        else:
            calls.append(ScriptedToolCall(name=name, raw_arguments=raw))
    content = message.get("content")
    text = content if isinstance(content, str) else None
    if calls:
        return CassetteAnswer(
            tool_calls=tuple(calls), content=text, truncated=truncated
        )
    if text is None:
        return None
    return CassetteAnswer(content=text, truncated=truncated)

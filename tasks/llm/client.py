"""The structured-output LLM client: instructor over openai over our transport stack.

Inputs: `LLMConfig` (mode, roles, retries, concurrency), an environment mapping
(API keys and base URLs), the config folder (cassette paths are relative to it) and
a `UsageLedger`. Output: an `InstructorLLM` whose `create` returns a validated
pydantic model per call key, re-asking the model with validation errors, and maps
every failure to a typed `LLMError`. Side effects: HTTP calls (live and record
modes), cassette appends (record mode), ledger records, retry sleeps. Nothing is
built at import time.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import httpx2
import instructor
import openai
from instructor.core.exceptions import (
    IncompleteOutputException,
    InstructorRetryException,
)
from pydantic import BaseModel

from schemas.base import checking
from schemas.config import LLMConfig, ModelRole, RoleName
from tasks.llm.async_validator_check import check_response_models_once
from tasks.llm.cassette import (
    CALL_KEY_HEADER,
    FREE_FORM_HEADER,
    PROMPT_TURNS_HEADER,
    ROLE_HEADER,
    Cassette,
    CassetteWriter,
    ReplayResponder,
    ReplayTransport,
    encode_header_value,
)
from tasks.llm.chat import ChatReply, chat_reply
from tasks.llm.errors import (
    CassetteFormatError,
    CassetteMiss,
    InvalidModelOutput,
    LLMError,
    LLMHTTPError,
    LLMRateLimited,
    LLMTimeout,
    LLMUnavailable,
    LLMUnreachable,
    ModelOutputTruncated,
)
from tasks.llm.ledger import UsageLedger
from tasks.llm.transport import RETRY_STATUSES, build_transport_stack

T = TypeVar("T", bound=BaseModel)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
REPLAY_BASE_URL = "http://replay.invalid/v1"
DEMO_HINT = "run the offline demo: agentskiller run --config configs/demo.yaml"


class LLMClient(Protocol):
    """What LLM operations need: one validated structured answer per call key."""

    def create(
        self,
        response_model: type[T],
        messages: list[dict[str, Any]],
        *,
        call_key: str,
        role: RoleName,
        model: str | None = None,
        context: dict[str, Any] | None = None,
        max_retries: int | None = None,
    ) -> T:
        """Return the model's answer as `response_model`."""
        ...

    def model_for(self, role: RoleName, override: str | None = None) -> str:
        """The model name a call on `role` uses: the override, else the role's."""
        ...

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        call_key: str,
        role: RoleName,
        tools: Sequence[Mapping[str, Any]] | None = None,
        model: str | None = None,
    ) -> ChatReply:
        """One free-form chat turn: the model's message, unvalidated."""
        ...

    def cost_usd(self, role: RoleName, prompt_tokens: int, completion: int) -> float:
        """What a role's tokens cost at its configured prices."""
        ...


@dataclass(frozen=True)
class RoleEndpoint:
    """Where one role's requests go, and how errors should name it."""

    base_url: str
    api_key: str
    api_key_env: str
    transport: httpx2.BaseTransport
    label: str


@functools.cache
def wire_model(response_model: type[T]) -> type[T]:
    """The class instructor validates answers as, made once per response model.

    Given a plain pydantic model, instructor builds a fresh subclass of it and
    regenerates its JSON schema on every call (measured: a fifth of an item's CPU
    in a step of short calls). Handing it the subclass it would build (which it
    then keeps, and whose schema it caches) makes that a lookup. Answers are
    instances of this subclass, as before.
    """
    if (
        inspect.isclass(response_model)
        and issubclass(response_model, BaseModel)
        and not issubclass(response_model, instructor.OpenAISchema)
    ):
        return instructor.openai_schema(response_model)
    return response_model


class InstructorLLM:
    """`LLMClient` over instructor (TOOLS mode), one OpenAI client per role."""

    def __init__(
        self,
        llm: LLMConfig,
        endpoints: Mapping[RoleName, RoleEndpoint],
        *,
        ledger: UsageLedger,
    ) -> None:
        """Build one instructor client per role.

        Args:
            llm: The LLM configuration (roles, timeouts, attempts, concurrency).
            endpoints: Endpoint and transport stack per role.
            ledger: Where the transport stack records usage; exposed as `.ledger`.
        """
        check_response_models_once()
        self.llm = llm
        self.ledger = ledger
        self._endpoints = dict(endpoints)
        self._slots = threading.BoundedSemaphore(llm.max_concurrency)
        self._http: list[httpx2.Client] = []
        self._clients: dict[str, instructor.Instructor] = {}
        self._raw: dict[str, openai.OpenAI] = {}
        for role, endpoint in self._endpoints.items():
            http = httpx2.Client(transport=endpoint.transport, timeout=llm.timeout_s)
            self._http.append(http)
            raw = openai.OpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                http_client=http,
                max_retries=0,
                timeout=llm.timeout_s,
            )
            self._raw[role] = raw
            self._clients[role] = instructor.from_openai(
                raw, mode=instructor.Mode.TOOLS
            )

    def model_for(self, role: RoleName, override: str | None = None) -> str:
        """The model name a call on `role` uses: the override, else the role's."""
        return override or self.llm.roles[role].model

    def create(
        self,
        response_model: type[T],
        messages: list[dict[str, Any]],
        *,
        call_key: str,
        role: RoleName,
        model: str | None = None,
        context: dict[str, Any] | None = None,
        max_retries: int | None = None,
    ) -> T:
        """Ask the role's model for a `response_model`, re-asking on invalid output.

        Args:
            response_model: The pydantic model the answer must validate as.
            messages: Chat messages; assistant turns already in them are not
                counted as re-asks.
            call_key: Stable key of this call (`<step>/<item>/...`); the cassette
                key in record and replay modes.
            role: Which configured role (endpoint and model) answers.
            model: Overrides the role's model for this call.
            context: Validation context; its `check` runs on every
                `CheckedDraft` of the answer (`schemas.base.checking`).
            max_retries: Total attempts including re-asks; default
                `llm.validation_retries`.

        Returns:
            The validated answer (instructor returns a subclass of the model).

        Raises:
            InvalidModelOutput: still invalid after every attempt;
                `ModelOutputTruncated` when an answer was cut off at the token
                limit (not re-asked: the same limit would cut it off again).
            CassetteMiss: replay mode and the cassette has no answer.
            LLMUnavailable: the endpoint gave no answer; the subclass says why
                (`LLMTimeout`, `LLMUnreachable`, `LLMHTTPError`, `LLMRateLimited`).
        """
        attempts = self.llm.validation_retries if max_retries is None else max_retries
        if attempts < 1:
            raise ValueError(f"max_retries counts total attempts; got {attempts}")
        prompt_turns = sum(1 for m in messages if m.get("role") == "assistant")
        headers = {
            CALL_KEY_HEADER: encode_header_value(call_key),
            ROLE_HEADER: role,
            PROMPT_TURNS_HEADER: str(prompt_turns),
        }
        client = self._clients[role]
        check = (context or {}).get("check")
        with self._slots, checking(check):
            try:
                result, _completion = client.chat.completions.create_with_completion(
                    model=self.model_for(role, model),
                    response_model=wire_model(response_model),
                    messages=messages,  # type: ignore[arg-type]
                    # instructor 1.17 makes max_retries + 1 attempts
                    max_retries=attempts - 1,
                    extra_headers=headers,
                    **_sampling(self.llm.roles[role]),
                )
            except (
                InstructorRetryException,
                IncompleteOutputException,
                openai.OpenAIError,
            ) as exc:
                translated = self._translate(exc, call_key, role)
                if translated is exc.__cause__:
                    raise translated from None
                raise translated from exc
        return result

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        call_key: str,
        role: RoleName,
        tools: Sequence[Mapping[str, Any]] | None = None,
        model: str | None = None,
    ) -> ChatReply:
        """One free-form chat turn (a rollout's assistant or simulated user):
        the model's message as it came, text and tool calls, nothing validated.

        Args:
            messages: The conversation so far, OpenAI-shaped (its assistant
                turns are the conversation's, not re-asks).
            call_key: Stable key of this turn; the cassette key in record and
                replay modes.
            role: Which configured role answers.
            tools: OpenAI function tools the model may call.
            model: Overrides the role's model.

        Raises:
            CassetteMiss: replay mode and the cassette has no answer.
            LLMUnavailable: the endpoint gave no answer (the subclass says why).
            LLMError: the role is not configured.
        """
        if role not in self._raw:
            raise LLMError(
                f"LLM call {call_key!r} needs llm.roles.{role}, which the "
                "configuration does not define"
            )
        prompt_turns = sum(1 for m in messages if m.get("role") == "assistant")
        headers = {
            CALL_KEY_HEADER: encode_header_value(call_key),
            ROLE_HEADER: role,
            PROMPT_TURNS_HEADER: str(prompt_turns),
            FREE_FORM_HEADER: "1",
        }
        extra: dict[str, Any] = {"tools": list(tools)} if tools else {}
        with self._slots:
            try:
                completion = self._raw[role].chat.completions.create(
                    model=self.model_for(role, model),
                    messages=list(messages),  # type: ignore[arg-type]
                    extra_headers=headers,
                    **extra,
                    **_sampling(self.llm.roles[role]),
                )
            except openai.OpenAIError as exc:
                raise self._translate(exc, call_key, role) from exc
        return chat_reply(completion, self.model_for(role, model))

    def cost_usd(self, role: RoleName, prompt_tokens: int, completion: int) -> float:
        """What a role's tokens cost at its configured prices (0 when unpriced)."""
        spec = self.llm.roles.get(role)
        return 0.0 if spec is None else spec.cost_usd(prompt_tokens, completion)

    def close(self) -> None:
        """Close the HTTP clients (and with them the transport stacks)."""
        for http in self._http:
            http.close()

    def __enter__(self) -> InstructorLLM:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _translate(self, exc: Exception, call_key: str, role: RoleName) -> Exception:
        cause: BaseException = exc
        if isinstance(exc, InstructorRetryException) and exc.__cause__ is not None:
            cause = exc.__cause__
        endpoint = self._endpoints[role]
        tries = self.llm.transport_retries + 1
        if isinstance(cause, IncompleteOutputException):
            return _truncated(cause, call_key, role, self.llm.roles[role])
        if isinstance(cause, openai.APIStatusError):
            return _status_error(cause, call_key, endpoint, tries)
        if isinstance(cause, openai.APIConnectionError):
            return _connection_error(cause, call_key, endpoint, tries, self.llm)
        if isinstance(exc, InstructorRetryException):
            if isinstance(cause, ValueError):
                return InvalidModelOutput(
                    call_key, exc.n_attempts, str(cause), _last_answer(exc)
                )
            # A validator that raised something other than ValueError is a bug in
            # our code, not bad model output: surface it unchanged.
            return cause if isinstance(cause, Exception) else exc
        return LLMError(f"LLM call {call_key!r} failed: {cause}")


def _truncated(
    exc: IncompleteOutputException, call_key: str, role: RoleName, spec: ModelRole
) -> ModelOutputTruncated:
    completion = getattr(exc, "last_completion", None)
    usage = getattr(completion, "usage", None)
    used = getattr(usage, "completion_tokens", None)
    return ModelOutputTruncated(
        call_key,
        1,
        role=role,
        max_tokens=spec.max_tokens,
        completion_tokens=used if isinstance(used, int) else None,
    )


def _connection_error(
    err: openai.APIConnectionError,
    call_key: str,
    endpoint: RoleEndpoint,
    tries: int,
    llm: LLMConfig,
) -> LLMUnavailable:
    reason = err.__cause__ or err
    if isinstance(reason, httpx2.ConnectTimeout):
        detail = f"connecting took longer than llm.timeout_s = {llm.timeout_s:g} s"
    elif isinstance(err, openai.APITimeoutError) or isinstance(
        reason, httpx2.TimeoutException
    ):
        return LLMTimeout(
            call_key, endpoint.label, timeout_s=llm.timeout_s, tries=tries
        )
    else:
        detail = f"{type(reason).__name__}: {reason}".rstrip(": ")
    return LLMUnreachable(call_key, endpoint.label, detail=detail, tries=tries)


def _last_answer(exc: InstructorRetryException) -> str | None:
    """The raw arguments (or text) of the last answer, for a fix-up prompt."""
    completion = getattr(exc, "last_completion", None)
    try:
        message = completion.choices[0].message  # type: ignore[union-attr]
    except (AttributeError, IndexError, TypeError):
        return None
    calls = getattr(message, "tool_calls", None) or []
    if calls:
        return calls[0].function.arguments
    return getattr(message, "content", None)


def _sampling(role: ModelRole) -> dict[str, Any]:
    sampling: dict[str, Any] = {}
    if role.temperature is not None:
        sampling["temperature"] = role.temperature
    if role.max_tokens is not None:
        sampling["max_tokens"] = role.max_tokens
    return sampling


def _status_error(
    err: openai.APIStatusError, call_key: str, endpoint: RoleEndpoint, tries: int
) -> LLMError:
    body = err.body if isinstance(err.body, dict) else {}
    status = err.status_code
    if status == 404 and body.get("type") == "cassette_miss":
        return CassetteMiss(
            str(body.get("call_key", call_key)),
            int(body.get("attempt", 0)),
            str(body.get("cassette", endpoint.label)),
        )
    text = _body_text(err)
    if status == 429:
        return LLMRateLimited(call_key, endpoint.label, body=text, tries=tries)
    return LLMHTTPError(
        call_key,
        endpoint.label,
        status=status,
        body=text,
        tries=tries if status in RETRY_STATUSES else 1,
        advice=_status_advice(status, endpoint),
    )


def _body_text(err: openai.APIStatusError) -> str:
    """The server's error message when the body is OpenAI-shaped, else the body."""
    body = err.body if isinstance(err.body, dict) else {}
    message = body.get("message")
    if isinstance(message, str) and message.strip():
        return message
    try:
        return err.response.text
    except (httpx2.ResponseNotRead, UnicodeDecodeError):
        return str(err.message)


def _status_advice(status: int, endpoint: RoleEndpoint) -> str:
    if status in (401, 403):
        return (
            f"The API key comes from the environment variable {endpoint.api_key_env}: "
            "check that it is set and valid for this endpoint."
        )
    if status == 404:
        return (
            "Check the model name (llm.roles.<role>.model) and that the base URL "
            "ends where the server serves /chat/completions (often .../v1)."
        )
    if status >= 500:
        return (
            "The server failed on every try; its log says why (an overloaded or "
            "crashed model server, an unsupported request). Run again once it is "
            "fixed; finished items are kept."
        )
    return (
        "The server refused the request; its message above says why (a context or "
        "max_tokens limit, an unsupported option). Change the configuration, then "
        "run again."
    )


def resolve_base_url(role: ModelRole, env: Mapping[str, str]) -> str:
    """The role's base URL: its own, else the named env var, else OpenAI's."""
    return role.base_url or env.get(role.base_url_env) or DEFAULT_BASE_URL


def build_llm_client(
    llm: LLMConfig,
    *,
    config_dir: Path,
    env: Mapping[str, str],
    ledger: UsageLedger,
    sleep: Callable[[float], None] = time.sleep,
    http_transport: Callable[[], httpx2.BaseTransport] | None = None,
) -> InstructorLLM:
    """Build the client for the configured mode.

    Args:
        llm: The LLM configuration.
        config_dir: Folder the cassette path is relative to.
        env: Environment variables (API keys, base URLs).
        ledger: Receives one record per HTTP try.
        sleep: Used for retry backoff and injected replay latency.
        http_transport: Factory of the base transport for live and record modes
            (default `httpx2.HTTPTransport`); tests pass a mock endpoint.

    Returns:
        The client; close it when done.

    Raises:
        CassetteFormatError: replay mode and the cassette is malformed.
        FileNotFoundError: replay mode and the cassette does not exist.
        ValueError: record mode with a cassette that is not `.jsonl`.
    """
    writer: CassetteWriter | None = None
    responder: ReplayResponder | None = None
    cassette_path = config_dir / llm.cassette if llm.cassette else None
    if llm.mode != "live" and cassette_path is None:
        raise ValueError(f"llm.cassette is required when llm.mode is {llm.mode!r}")
    if llm.mode == "replay" and cassette_path is not None:
        cassette = Cassette.load(cassette_path)
        responder = ReplayResponder(
            cassette, latency_s=llm.replay_latency_s, sleep=sleep
        )
    elif llm.mode == "record" and cassette_path is not None:
        writer = CassetteWriter(cassette_path)

    def _base() -> httpx2.BaseTransport:
        if responder is not None:
            return ReplayTransport(responder)
        if http_transport is not None:
            return http_transport()
        limit = llm.max_concurrency
        limits = httpx2.Limits(max_connections=limit, max_keepalive_connections=limit)
        return httpx2.HTTPTransport(limits=limits)

    endpoints: dict[RoleName, RoleEndpoint] = {}
    for role_name, role in llm.roles.items():
        stack = build_transport_stack(
            _base(),
            ledger=ledger,
            source="replay" if responder is not None else "live",
            retries=llm.transport_retries,
            backoff_s=llm.retry_backoff_s,
            backoff_max_s=llm.retry_backoff_max_s,
            writer=writer,
            sleep=sleep,
        )
        if responder is not None:
            base_url, api_key = REPLAY_BASE_URL, "replay"
            label = f"replay cassette {cassette_path}"
        else:
            base_url = resolve_base_url(role, env)
            api_key, label = env.get(role.api_key_env, ""), base_url
        endpoints[role_name] = RoleEndpoint(
            base_url=base_url,
            api_key=api_key,
            api_key_env=role.api_key_env,
            transport=stack,
            label=label,
        )
    return InstructorLLM(llm, endpoints, ledger=ledger)


def check_endpoint_config(
    llm: LLMConfig, env: Mapping[str, str], *, config_dir: Path | None = None
) -> list[str]:
    """List the problems a run would hit before its first LLM call.

    Args:
        llm: The LLM configuration.
        env: Environment variables.
        config_dir: Folder the cassette path is relative to (default: the
            working directory).

    Returns:
        One sentence per problem; empty when the configuration is usable.
    """
    problems: list[str] = []
    cassette_path = Path(config_dir or ".") / (llm.cassette or "")
    if llm.mode == "replay":
        if not cassette_path.exists():
            return [
                f"llm.cassette: cassette {cassette_path} does not exist (replay "
                "mode answers from it; record one with llm.mode: record)"
            ]
        try:
            Cassette.load(cassette_path)
        except CassetteFormatError as exc:
            problems.append(f"llm.cassette: {exc}")
        return problems
    if llm.mode == "record" and cassette_path.suffix.lower() != ".jsonl":
        problems.append(
            f"llm.cassette: record mode writes a .jsonl cassette; got {cassette_path}"
        )
    unset: dict[str, list[str]] = {}
    for role_name in sorted(llm.roles):
        role = llm.roles[role_name]
        if not env.get(role.api_key_env):
            unset.setdefault(role.api_key_env, []).append(f"llm.roles.{role_name}")
        base_url = resolve_base_url(role, env)
        if not base_url.startswith(("http://", "https://")):
            problems.append(
                f"llm.roles.{role_name}: base URL {base_url!r} must start with "
                "http:// or https://"
            )
    # One sentence per variable: roles sharing a key would otherwise repeat it.
    for variable, roles in unset.items():
        problems.append(
            f"{_and_list(roles)}: environment variable {variable} is not set; "
            f"export it (local servers accept any value), or {DEMO_HINT}"
        )
    return problems


def _and_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"

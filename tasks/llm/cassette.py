"""Cassettes: recorded or hand-scripted model answers keyed by call key and attempt.

Inputs: a cassette file, YAML (hand-scripted: `{version: 1, scripted, description,
calls: {<call key>: [<answer for attempt 0>, <attempt 1>, ...]}}`) or JSONL
(recorded: one `{"call_key", "attempt", "answer"}` object per line, later lines
overriding earlier ones). Output: `Cassette` lookups, `ReplayResponder` (the
chat-completions subset of the OpenAI HTTP API answered from a cassette) and
`ReplayTransport` (that responder as an in-process httpx2 transport). Side effects:
`CassetteWriter` appends recorded answers to a JSONL file; the responder sleeps for
the configured latency.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx2
import yaml
from pydantic import ValidationError

from schemas.llm import CassetteAnswer, CassetteDocument, ScriptedToolCall
from tasks.llm.errors import CassetteFormatError, CassetteMiss

CALL_KEY_HEADER = "X-AgentSkiller-Call-Key"
ROLE_HEADER = "X-AgentSkiller-Role"
PROMPT_TURNS_HEADER = "X-AgentSkiller-Prompt-Turns"
"""Assistant messages already in the caller's prompt (not re-asks); default 0."""

FREE_FORM_HEADER = "X-AgentSkiller-Free-Form"
"""Set on free-form chat requests (rollout turns): recording keeps the whole
message (text and every named tool call), not one structured answer."""

_HEADER_SAFE = "/:-_.~@+=,;!*()[]"


def encode_header_value(value: str) -> str:
    """Percent-encode a call key so any Unicode survives an HTTP header."""
    return quote(value, safe=_HEADER_SAFE)


def call_key_of(headers: Mapping[str, str]) -> str | None:
    """Return the decoded call key of a request, or None when the header is absent."""
    raw = _header(headers, CALL_KEY_HEADER)
    return None if raw is None else unquote(raw)


def request_attempt(body: Mapping[str, Any], headers: Mapping[str, str]) -> int:
    """Re-ask index of a chat request: assistant messages beyond the prompt's own.

    instructor re-asks by appending the rejected assistant tool call and a `tool`
    message with the validation error, so each re-ask adds one assistant message.
    """
    messages = body.get("messages") or []
    assistants = sum(
        1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant"
    )
    try:
        prompt_turns = int(_header(headers, PROMPT_TURNS_HEADER) or 0)
    except ValueError:
        prompt_turns = 0
    return max(assistants - prompt_turns, 0)


def token_limit(body: Mapping[str, Any]) -> int | None:
    """The completion-token limit a chat request sets, if any."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


class Cassette:
    """Answers by (call key, attempt), loaded from a YAML or JSONL file."""

    def __init__(
        self,
        answers: Mapping[tuple[str, int], CassetteAnswer],
        *,
        path: str = "<memory>",
        scripted: bool = False,
        description: str = "",
    ) -> None:
        self._answers = dict(answers)
        self.path = path
        self.scripted = scripted
        self.description = description

    @classmethod
    def load(cls, path: Path) -> Cassette:
        """Read a cassette, choosing the format by suffix (.yaml/.yml or .jsonl).

        Raises:
            CassetteFormatError: the file is malformed; the message names the file
                and, where known, the call key.
            FileNotFoundError: the file does not exist.
        """
        path = Path(path)
        if path.is_dir():
            return _load_folder(path)
        suffix = path.suffix.lower()
        text = path.read_text(encoding="utf-8")
        if suffix in (".yaml", ".yml"):
            return _load_yaml(path, text)
        if suffix == ".jsonl":
            return _load_jsonl(path, text)
        raise CassetteFormatError(
            f"cassette {path}: unknown format {suffix or '(no suffix)'}; use .yaml, "
            ".yml (scripted) or .jsonl (recorded)"
        )

    def answer(self, call_key: str, attempt: int) -> CassetteAnswer:
        """Return the answer for one call, or raise `CassetteMiss` naming the key."""
        try:
            return self._answers[(call_key, attempt)]
        except KeyError:
            raise CassetteMiss(call_key, attempt, self.path) from None

    def keys(self) -> list[str]:
        """Sorted call keys that have at least one answer."""
        return sorted({key for key, _ in self._answers})

    def __len__(self) -> int:
        return len(self._answers)


def _load_yaml(path: Path, text: str) -> Cassette:
    try:
        document = CassetteDocument.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise CassetteFormatError(f"cassette {path}: {exc}") from exc
    answers: dict[tuple[str, int], CassetteAnswer] = {}
    for call_key, attempts in document.calls.items():
        for attempt, raw in enumerate(attempts):
            label = f"call key {call_key!r} attempt {attempt}"
            answers[(call_key, attempt)] = _validate_answer(
                path, label, _shorthand(raw)
            )
    return Cassette(
        answers,
        path=str(path),
        scripted=document.scripted,
        description=document.description,
    )


_PART_SUFFIXES = (".yaml", ".yml", ".jsonl")


def _load_folder(folder: Path) -> Cassette:
    """A folder of cassette files (one per step, say) read as one cassette.

    Files are read in name order; a call key answered in two files is an error
    naming both, so parts written separately cannot silently shadow each other.
    """
    parts = sorted(p for p in folder.iterdir() if p.suffix.lower() in _PART_SUFFIXES)
    if not parts:
        raise CassetteFormatError(
            f"cassette folder {folder} holds no .yaml, .yml or .jsonl files"
        )
    answers: dict[tuple[str, int], CassetteAnswer] = {}
    owner: dict[str, Path] = {}
    loaded = [Cassette.load(part) for part in parts]
    for part, cassette in zip(parts, loaded, strict=True):
        for key, attempt in cassette._answers:
            if key in owner and owner[key] != part:
                raise CassetteFormatError(
                    f"cassette folder {folder}: call key {key!r} is answered in both "
                    f"{owner[key].name} and {part.name}"
                )
            owner[key] = part
            answers[(key, attempt)] = cassette._answers[(key, attempt)]
    return Cassette(
        answers,
        path=str(folder),
        scripted=all(c.scripted for c in loaded),
        description="; ".join(c.description for c in loaded if c.description),
    )


def _load_jsonl(path: Path, text: str) -> Cassette:
    answers: dict[tuple[str, int], CassetteAnswer] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CassetteFormatError(
                f"cassette {path} line {line_no}: not valid JSON: {exc}"
            ) from exc
        call_key = row.get("call_key") if isinstance(row, dict) else None
        attempt = row.get("attempt") if isinstance(row, dict) else None
        if not isinstance(call_key, str) or not isinstance(attempt, int) or attempt < 0:
            raise CassetteFormatError(
                f"cassette {path} line {line_no}: each line needs a string "
                "'call_key', an integer 'attempt' >= 0 and an 'answer'"
            )
        label = f"line {line_no}, call key {call_key!r} attempt {attempt}"
        answers[(call_key, attempt)] = _validate_answer(path, label, row.get("answer"))
    return Cassette(answers, path=str(path), scripted=False)


_ANSWER_KEYS = frozenset(CassetteAnswer.model_fields)


def _shorthand(raw: Any) -> Any:
    """In hand-written YAML, a mapping with none of the answer keys is the tool
    call's arguments themselves (`- {related: [Clinic]}`)."""
    if isinstance(raw, dict) and raw and not set(raw) & _ANSWER_KEYS:
        return {"tool_arguments": raw}
    return raw


def _validate_answer(path: Path, label: str, raw: Any) -> CassetteAnswer:
    try:
        return CassetteAnswer.model_validate(raw)
    except ValidationError as exc:
        raise CassetteFormatError(
            f"cassette {path}: {label}: invalid answer: {exc}"
        ) from exc


class CassetteWriter:
    """Appends recorded answers to a JSONL cassette, one flushed line per answer."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        if path.suffix.lower() != ".jsonl":
            raise ValueError(f"recorded cassettes are JSONL files; got {path}")
        self.path = path
        self._lock = threading.Lock()

    def append(self, call_key: str, attempt: int, answer: CassetteAnswer) -> None:
        """Append one answer; it overrides any earlier line for the same call."""
        line = json.dumps(
            {
                "call_key": call_key,
                "attempt": attempt,
                "answer": answer.model_dump(mode="json", exclude_defaults=True),
            },
            sort_keys=True,
            ensure_ascii=False,
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
                handle.flush()


Reply = tuple[int, dict[str, str], bytes]


class ReplayResponder:
    """Answers OpenAI chat-completion requests from a cassette, deterministically.

    Serves `POST .../chat/completions` and `GET .../models`. Scripted
    `errors_before` of an answer are served first, one per request, then the answer.
    """

    def __init__(
        self,
        cassette: Cassette,
        latency_s: float = 0.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cassette = cassette
        self.latency_s = latency_s
        self._sleep = sleep
        self._lock = threading.Lock()
        self._errors_served: dict[tuple[str, int], int] = {}

    def respond(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> Reply:
        """Answer one HTTP request.

        Args:
            method: HTTP method.
            path: Request path; a query string is ignored.
            headers: Request headers (any case).
            body: Raw request body.

        Returns:
            `(status, headers, body)` with a JSON body.
        """
        route = path.split("?", 1)[0].rstrip("/")
        if method == "POST" and route.endswith("/chat/completions"):
            return self._chat(headers, body)
        if method == "GET" and route.endswith("/models"):
            model = {"id": "replay", "object": "model", "created": 0, "owned_by": "x"}
            return _json(200, {"object": "list", "data": [model]})
        return _error(404, f"replay server has no route {method} {path}", "not_found")

    def _chat(self, headers: Mapping[str, str], body: bytes) -> Reply:
        call_key = call_key_of(headers)
        if call_key is None:
            return _error(
                400,
                f"request has no {CALL_KEY_HEADER} header; replay mode answers only "
                "calls made through tasks.llm.client, which sends it",
                "invalid_request_error",
            )
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError as exc:
            return _error(400, f"request body is not JSON: {exc}", "invalid_request")
        if not isinstance(request, dict):
            return _error(400, "request body must be a JSON object", "invalid_request")
        attempt = request_attempt(request, headers)
        if self.latency_s > 0:
            self._sleep(self.latency_s)
        try:
            answer = self.cassette.answer(call_key, attempt)
        except CassetteMiss as miss:
            return _error(
                404,
                str(miss),
                "cassette_miss",
                call_key=call_key,
                attempt=attempt,
                cassette=self.cassette.path,
            )
        scripted = self._next_scripted_error(call_key, attempt, answer)
        if scripted is not None:
            return scripted
        return self._completion(call_key, attempt, request, body, answer)

    def _next_scripted_error(
        self, call_key: str, attempt: int, answer: CassetteAnswer
    ) -> Reply | None:
        with self._lock:
            served = self._errors_served.get((call_key, attempt), 0)
            if served >= len(answer.errors_before):
                return None
            self._errors_served[(call_key, attempt)] = served + 1
        scripted = answer.errors_before[served]
        status, headers, payload = _error(
            scripted.status, scripted.message, "scripted_error"
        )
        if scripted.retry_after is not None:
            headers["Retry-After"] = _format_seconds(scripted.retry_after)
        return status, headers, payload

    def _completion(
        self,
        call_key: str,
        attempt: int,
        request: dict[str, Any],
        body: bytes,
        answer: CassetteAnswer,
    ) -> Reply:
        digest = hashlib.sha256(f"{call_key}\n{attempt}".encode()).hexdigest()
        if answer.tool_calls is not None:
            calls = [
                {
                    "id": f"call_{digest[:12]}_{index}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": _argument_text(call)},
                }
                for index, call in enumerate(answer.tool_calls)
            ]
            message = {
                "role": "assistant",
                "content": answer.content,
                "tool_calls": calls,
            }
            finish_reason = "tool_calls"
            answer_text = (answer.content or "") + "".join(
                c["function"]["arguments"] for c in calls
            )
        elif answer.content is not None:
            message: dict[str, Any] = {"role": "assistant", "content": answer.content}
            finish_reason = "stop"
            answer_text = answer.content
        else:
            name = _requested_function(request)
            if name is None:
                return _error(
                    400,
                    f"cassette answer for call key {call_key!r} attempt {attempt} is a "
                    "tool call, but the request offered no tools",
                    "invalid_request_error",
                )
            if answer.tool_arguments is not None:
                answer_text = json.dumps(answer.tool_arguments, ensure_ascii=False)
            else:
                answer_text = answer.raw_arguments or ""
            tool_call = {
                "id": f"call_{digest[:16]}",
                "type": "function",
                "function": {"name": name, "arguments": answer_text},
            }
            message = {"role": "assistant", "content": None, "tool_calls": [tool_call]}
            finish_reason = "tool_calls"
        if answer.truncated:
            finish_reason = "length"
        prompt_tokens = max(len(body) // 4, 1)
        completion_tokens = max(len(answer_text.encode()) // 4, 1)
        limit = token_limit(request)
        if answer.truncated and limit is not None:
            # a recorded cut-off used the whole budget; report it as the server did
            completion_tokens = limit
        completion = {
            "id": f"replay-{digest[:24]}",
            "object": "chat.completion",
            "created": 0,
            "model": str(request.get("model") or "replay"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return _json(200, completion)


def _argument_text(call: ScriptedToolCall) -> str:
    if call.arguments is not None:
        return json.dumps(call.arguments, ensure_ascii=False)
    return call.raw_arguments or ""


def _requested_function(request: Mapping[str, Any]) -> str | None:
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if name:
            return str(name)
    tools = request.get("tools") or []
    if tools and isinstance(tools[0], dict):
        name = (tools[0].get("function") or {}).get("name")
        if name:
            return str(name)
    return None


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else repr(float(seconds))


def _json(status: int, payload: Any) -> Reply:
    data = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return status, {"Content-Type": "application/json"}, data


def _error(status: int, message: str, kind: str, **extra: Any) -> Reply:
    return _json(status, {"error": {"message": message, "type": kind, **extra}})


class ReplayTransport(httpx2.BaseTransport):
    """In-process httpx2 transport answering from a `ReplayResponder` (no sockets)."""

    def __init__(self, responder: ReplayResponder) -> None:
        self.responder = responder

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        status, headers, payload = self.responder.respond(
            request.method, request.url.path, request.headers, body
        )
        return httpx2.Response(
            status, headers=headers, content=payload, request=request
        )

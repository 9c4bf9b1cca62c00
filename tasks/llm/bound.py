"""A step's view of the LLM: one client, one prompt library, one role and model.

Input: the shared `LLMClient`, the `PromptLibrary`, and the step's model choice.
Output: `StepLLM.ask`, which renders a prompt, calls the model through instructor
with a stable call key (`<step>/<item key>`) and returns the validated answer with
the prompt identity needed for producer records. No side effects beyond the call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from schemas.base import stable_hash
from schemas.config import RoleName
from tasks.llm.chat import ChatReply
from tasks.llm.client import LLMClient
from tasks.llm.prompting import PromptLibrary, RenderedPrompt

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    prompt: RenderedPrompt
    model_id: str


class StepLLM:
    """Binds a client to one step's role, model override and attempt budget."""

    def __init__(
        self,
        client: LLMClient,
        prompts: PromptLibrary,
        *,
        step: str,
        role: RoleName,
        model: str | None,
        max_retries: int | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.client = client
        self.prompts = prompts
        self.step = step
        self.role: RoleName = role
        self.model_override = model
        self.max_retries = max_retries
        self.settings = dict(settings or {})

    @property
    def model_id(self) -> str:
        return self.client.model_for(self.role, self.model_override)

    @property
    def settings_hash(self) -> str:
        """Hash of the call settings that shape answers (attempts, max_tokens, ...)."""
        return stable_hash(self.settings)

    def prompt_hash(self, prompt_id: str) -> str:
        return self.prompts.prompt_hash(prompt_id)

    def ask(
        self,
        prompt_id: str,
        response_model: type[T],
        *,
        item_key: str,
        check: Callable[[Any], list[str]] | None = None,
        max_retries: int | None = None,
        **template_context: Any,
    ) -> Answer[T]:
        """Render `prompt_id`, call the model and return its validated answer.

        Raises:
            tasks.llm.errors.InvalidModelOutput: no attempt produced a valid answer.
            tasks.llm.errors.LLMUnavailable: the endpoint could not be reached.
            tasks.llm.errors.CassetteMiss: replay mode had no recorded answer.
        """
        prompt = self.prompts.render(prompt_id, **template_context)
        value = self.client.create(
            response_model,
            prompt.messages,
            call_key=f"{self.step}/{item_key}",
            role=self.role,
            model=self.model_override,
            context={"check": check} if check is not None else None,
            max_retries=max_retries if max_retries is not None else self.max_retries,
        )
        return Answer(value=value, prompt=prompt, model_id=self.model_id)

    def chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        item_key: str,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> ChatReply:
        """One free-form chat turn on this step's role and model, keyed
        `<step>/<item key>` (a rollout turn: `r01/<query>#<trial>/assistant/3`).

        Raises:
            tasks.llm.errors.LLMUnavailable: the endpoint could not be reached.
            tasks.llm.errors.CassetteMiss: replay mode had no recorded answer.
        """
        return self.client.chat(
            messages,
            call_key=f"{self.step}/{item_key}",
            role=self.role,
            tools=tools,
            model=self.model_override,
        )

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """What these tokens cost at the role's configured prices."""
        return self.client.cost_usd(self.role, prompt_tokens, completion_tokens)

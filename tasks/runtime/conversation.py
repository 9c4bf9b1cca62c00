"""A conversation between an assistant policy and a user policy in an episode.

Input: an `Episode`, an assistant policy (the conversation and the tools ->
the next assistant message) and a user policy (the conversation -> the user's
reply), and the turn limits. Output: the episode's `Rollout` and its
`EvaluationResult`. The loop is the reference's multi-turn loop: in each turn
the assistant speaks until it answers without tool calls (or uses up its steps
for the turn), its tool calls run in the episode in `tool_calls` order, then
the user replies; a control token (`###STOP###`, `###TRANSFER###`,
`###OUT-OF-SCOPE###`) ends it, else the turn limit does. An environment that
dies ends it too, with a rollout that records the error and has no final state.
Side effects: the episode's tool calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from schemas.evaluation import EvaluationResult
from schemas.rollout import ChatMessage, Rollout
from tasks.runtime.episode import Episode
from tasks.runtime.served_environment import EnvironmentLost

DEFAULT_MAX_TURNS = 10
DEFAULT_MAX_STEPS_PER_TURN = 20


class AssistantPolicy(Protocol):
    """Writes the assistant's next message (text, tool calls or both)."""

    def __call__(
        self, messages: Sequence[ChatMessage], tools: Sequence[dict[str, Any]]
    ) -> ChatMessage: ...


class UserPolicy(Protocol):
    """Writes the user's reply; a control token in it ends the conversation."""

    def __call__(self, messages: Sequence[ChatMessage]) -> str: ...


def converse(
    episode: Episode,
    assistant: AssistantPolicy,
    user: UserPolicy,
    *,
    max_turns: int = DEFAULT_MAX_TURNS,
    max_steps_per_turn: int = DEFAULT_MAX_STEPS_PER_TURN,
) -> tuple[Rollout, EvaluationResult]:
    """Run the conversation to its end and score it.

    Args:
        episode: A started episode (its messages hold the user's opening).
        assistant: The assistant policy.
        user: The user policy.
        max_turns: User replies after which the conversation stops.
        max_steps_per_turn: Assistant messages per turn.

    Returns:
        The rollout and its evaluation.
    """
    try:
        for _ in range(max_turns):
            for _ in range(max_steps_per_turn):
                if not episode.act(assistant(episode.messages, episode.tools)):
                    break
            episode.add(ChatMessage(role="user", content=user(episode.messages)))
            if episode.stopped:
                return episode.rollout(), episode.finish()
    except EnvironmentLost:
        # Recorded on the episode: its rollout carries the error, no final state.
        return episode.rollout(), episode.finish()
    return (
        episode.rollout(max_turns_reached=True),
        episode.finish(max_turns_reached=True),
    )

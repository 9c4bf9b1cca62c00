"""Playing an episode to its end with policies: the rollout loop over an
`Episode`.

Input: a started `Episode`, an assistant (the conversation so far -> its next
message) and a user (the conversation -> its reply), and the turn limits.
Output: the episode's `Rollout` and its `EvaluationResult`. The loop is the
rollouts' own (`tasks.core.conversation.converse`: the assistant acts until it
answers without tool calls, the user replies, a control token or the turn limit
ends it); tool calls run in the episode's session in `tool_calls` order. An
environment that dies ends it with a rollout that records the error and has no
final state. `play_reference` plays a built-in assistant
(`tasks.core.reference_agents`) against the scripted user. Side effects: the
episode's tool calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from schemas.evaluation import EvaluationResult
from schemas.rollout import ChatMessage, Rollout
from tasks.core import reference_agents as agents
from tasks.core.conversation import Assistant, converse
from tasks.runtime.episode import Episode
from tasks.runtime.served_environment import EnvironmentLost

ReferenceAssistant = Literal["oracle", "do_nothing", "wrong_argument"]
REFERENCE_ASSISTANTS: tuple[ReferenceAssistant, ...] = (
    "oracle",
    "do_nothing",
    "wrong_argument",
)
DEFAULT_MAX_TURNS = 10
DEFAULT_MAX_STEPS_PER_TURN = 20


def play(
    episode: Episode,
    assistant: Assistant,
    user: Callable[[Sequence[ChatMessage]], str] = agents.scripted_user,
    *,
    max_turns: int = DEFAULT_MAX_TURNS,
    max_steps_per_turn: int = DEFAULT_MAX_STEPS_PER_TURN,
) -> tuple[Rollout, EvaluationResult]:
    """Run the episode's conversation to its end and score it.

    Args:
        episode: A started episode (its messages hold the user's opening).
        assistant: The assistant policy.
        user: The user policy (default: stops after the assistant's turn).
        max_turns: User replies after which the conversation stops.
        max_steps_per_turn: Assistant messages per turn.

    Returns:
        The rollout and its evaluation.
    """
    seen: list[ChatMessage] = list(episode.messages)

    def watched(messages: Sequence[ChatMessage]) -> ChatMessage:
        seen[:] = messages
        return assistant(messages)

    try:
        done = converse(
            tuple(episode.messages),
            assistant=watched,
            user=user,
            execute=episode.run_calls,
            max_turns=max_turns,
            max_steps_per_turn=max_steps_per_turn,
        )
    except EnvironmentLost:
        # Recorded on the episode: the rollout carries the error and no final
        # state; the transcript is the one the assistant saw last.
        episode.use_transcript(seen)
        return episode.rollout(), episode.finish()
    episode.record(done)
    return episode.rollout(), episode.finish()


def reference_assistant(name: ReferenceAssistant, episode: Episode) -> Assistant:
    """A built-in assistant for the episode's task."""
    if name == "oracle":
        return agents.oracle(episode.task)
    if name == "do_nothing":
        return agents.do_nothing(episode.task)
    return agents.wrong_argument(episode.task, episode.write_tools, episode.tools)


def play_reference(
    episode: Episode, name: ReferenceAssistant
) -> tuple[Rollout, EvaluationResult]:
    """A built-in assistant against the scripted user in the episode."""
    return play(episode, reference_assistant(name, episode))

"""SEARCH/REPLACE edit models used by the repair loops (s06, s07, s09): the blocks
parsed from a model answer (well-formed and malformed), the per-block result of
applying them to a text, and the outcome with the new text and the model-readable
failure report; data only, no side effects."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from schemas.base import Frozen

BlockStatus = Literal[
    "applied", "no_match", "ambiguous", "malformed", "already_applied", "rejected"
]
"""What happened to one block. `rejected`: it cannot be applied as written (it
would leave the file empty, or both of its texts are empty)."""

FAILED_STATUSES: frozenset[str] = frozenset(
    {"no_match", "ambiguous", "malformed", "rejected"}
)
"""Statuses that mean the model has to resend the block."""

MissingPart = Literal["divider", "terminator", "head"]
"""The part a malformed block lacks: the `=======` divider, the `>>>>>>> REPLACE`
terminator, or the `<<<<<<< SEARCH` head (a terminator with no block open)."""


class EditBlock(Frozen):
    """One SEARCH/REPLACE block; texts end with a newline unless empty."""

    search: str
    replace: str
    index: int = Field(ge=0, description="Position among the blocks of the answer.")


class MalformedBlock(Frozen):
    """A block the parser could not complete, reported instead of raised."""

    index: int = Field(ge=0)
    line: int = Field(ge=1, description="1-based line of the answer where it starts.")
    missing: MissingPart
    text: str = Field(description="The raw lines of the block read so far.")


class ParsedEdits(Frozen):
    """Every block found in a model answer, in answer order."""

    blocks: tuple[EditBlock, ...] = ()
    malformed: tuple[MalformedBlock, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the answer held no block at all, not even a broken one."""
        return not self.blocks and not self.malformed


class BlockResult(Frozen):
    index: int = Field(ge=0)
    status: BlockStatus
    detail: str

    @property
    def failed(self) -> bool:
        """True when the model has to resend this block."""
        return self.status in FAILED_STATUSES


class EditOutcome(Frozen):
    """The text after applying the blocks, with one result per block.

    `report` is empty when every block applied; otherwise it is markdown for the
    model, naming the failed blocks by number.
    """

    text: str
    changed: bool
    results: tuple[BlockResult, ...]
    report: str = ""

    @model_validator(mode="after")
    def _never_empty_on_change(self) -> EditOutcome:
        if self.changed and not self.text.strip():
            raise ValueError("an edit outcome must not change a text into nothing")
        return self

    @property
    def applied(self) -> tuple[int, ...]:
        """Indexes of the blocks that were applied."""
        return tuple(r.index for r in self.results if r.status == "applied")

    @property
    def failed(self) -> tuple[int, ...]:
        """Indexes of the blocks the model has to resend."""
        return tuple(r.index for r in self.results if r.failed)

    @property
    def succeeded(self) -> bool:
        """True when the text changed and no block failed."""
        return self.changed and not self.failed

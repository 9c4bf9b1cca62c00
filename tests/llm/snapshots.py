"""Golden snapshots of rendered prompts, shared by the prompt tests: a prompt change
shows up as a reviewable diff, and `pytest --update-golden` rewrites the files."""

from __future__ import annotations

from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str, *, update: bool) -> None:
    """Compare `text` with `golden/<name>.md` (or rewrite that file when updating)."""
    golden = GOLDEN / f"{name}.md"
    if update:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"prompt {name} changed"


def golden_name(prompt_id: str) -> str:
    return prompt_id.replace("/", "__")

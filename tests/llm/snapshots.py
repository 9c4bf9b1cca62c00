"""Golden snapshots of rendered prompts, shared by the prompt tests: a prompt change
shows up as a reviewable diff, and `pytest --update-golden` rewrites the files."""

from __future__ import annotations

from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"


def check_golden(name: str, text: str, *, update: bool, folder: Path = GOLDEN) -> None:
    """Compare `text` with `<folder>/<name>.md` (or rewrite that file when
    updating); `folder` defaults to the prompts' `golden/`."""
    golden = folder / f"{name}.md"
    if update:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"golden {name} changed"


def golden_name(prompt_id: str) -> str:
    return prompt_id.replace("/", "__")


def assert_inputs_required(prompt_id: str, inputs: dict) -> None:
    """StrictUndefined: leaving out any one input is an error, not an empty string."""
    import jinja2
    import pytest

    from tasks.llm.prompting import PromptLibrary

    for missing in inputs:
        partial = {k: v for k, v in inputs.items() if k != missing}
        with pytest.raises(jinja2.UndefinedError):
            PromptLibrary().render(prompt_id, **partial)

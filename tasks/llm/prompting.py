"""Prompt templates: one Jinja file per prompt under `tasks/llm/prompts/<stage>/`.

Input: a prompt id such as `s04/detail_blueprint` and typed objects for the template.
Output: a `RenderedPrompt` with the chat messages, the prompt id and the template
hash (sha256 over the template source and every template it includes), which goes
into cache keys and producer records. No side effects; the Jinja environment is
built on first use.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta

from schemas.base import sha256_hex

_SUFFIX = ".md.j2"


@dataclass(frozen=True)
class RenderedPrompt:
    """A rendered prompt and the identity of its template."""

    prompt_id: str
    prompt_hash: str
    text: str

    @property
    def messages(self) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.text}]


@functools.cache
def _environment(override_dir: str | None = None) -> jinja2.Environment:
    package = jinja2.PackageLoader("tasks.llm", "prompts")
    loader: jinja2.BaseLoader = package
    if override_dir is not None:
        loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(override_dir), package])
    return jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


class PromptLibrary:
    """The packaged prompts, optionally shadowed by a directory of overrides.

    A file `<override_dir>/s04/detail_blueprint.md.j2` replaces the packaged
    template of the same id; its hash changes, so exactly the items that use it
    miss the cache and re-run.
    """

    def __init__(self, override_dir: str | None = None) -> None:
        self._env = _environment(override_dir)
        self._hashes: dict[str, str] = {}

    def _source(self, name: str) -> str:
        assert self._env.loader is not None
        source, _, _ = self._env.loader.get_source(self._env, name)
        return source

    def prompt_hash(self, prompt_id: str) -> str:
        """sha256 over a template's source and, recursively, its includes."""
        if prompt_id in self._hashes:
            return self._hashes[prompt_id]
        seen: dict[str, str] = {}
        pending = [prompt_id + _SUFFIX]
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            source = self._source(name)
            seen[name] = source
            pending.extend(
                ref
                for ref in meta.find_referenced_templates(self._env.parse(source))
                if ref
            )
        joined = "\n".join(f"{name}\n{seen[name]}" for name in sorted(seen))
        digest = sha256_hex(joined)
        self._hashes[prompt_id] = digest
        return digest

    def render(self, prompt_id: str, **context: Any) -> RenderedPrompt:
        """Render `<prompt_id>.md.j2` with typed inputs.

        Raises:
            jinja2.UndefinedError: a variable the template uses was not passed.
        """
        template = self._env.get_template(prompt_id + _SUFFIX)
        text = template.render(**context).strip() + "\n"
        return RenderedPrompt(
            prompt_id=prompt_id, prompt_hash=self.prompt_hash(prompt_id), text=text
        )

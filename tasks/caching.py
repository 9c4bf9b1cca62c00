"""The one cache policy of the pipeline, and code versions for cache keys.

Input: a task's `work: WorkItem` parameter. Output: `artifact_cache_key`, a Prefect
`cache_key_fn` that is the hash of the work item (input artifact hashes, parameters
hash, model id, prompt hashes, code version), and `code_version`, a hash over the
source of the modules a step runs. Prefect's TASK_SOURCE policy cannot see prompt
files or helper modules, which is why it is not used. No side effects.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any

from schemas.artifact import WorkItem
from schemas.base import SCHEMA_VERSION, sha256_hex


def artifact_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn: the hash of the task's `work` parameter."""
    work = parameters["work"]
    if not isinstance(work, WorkItem):
        raise TypeError(
            f"cached steps take a WorkItem 'work' parameter, got {type(work)}"
        )
    return work.cache_key


@functools.cache
def code_version(*module_names: str) -> str:
    """Hash of the schema version and the source of the named modules."""
    parts = [f"schema={SCHEMA_VERSION}"]
    for name in sorted(set(module_names)):
        module = importlib.import_module(name)
        parts.append(f"{name}\n{inspect.getsource(module)}")
    return sha256_hex("\n".join(parts))[:16]

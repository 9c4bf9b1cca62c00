"""The only filesystem and LanceDB code: output locations (a local folder or an
fsspec URL such as `s3://bucket/prefix`), output layout, atomic writes, append-only
journals, the artifact store with lineage records and step manifests (checked on
read), the run lock, lineage queries, configuration loading, vector tables, the
storage check made before a run, and staging of a server's files for serving.

Inputs: an output root (path or URL), artifacts, configuration files. Output: the
classes and functions re-exported here (`tasks.store.vectors` is imported on its
own, as LanceDB is slow to import), each imported on first use, so that a module
that needs only the layout (the sandboxed environment worker) does not import the
artifact store and the configuration loader. Side effects: none at import; writes
happen only through the store's methods.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.store.artifacts import (
        ArtifactInvalid,
        ArtifactNotFound,
        ArtifactStore,
        CorruptObject,
        ManifestInvalid,
        MissingStepOutput,
        StoreError,
        UnusableStepOutput,
    )
    from tasks.store.atomic import write_json_atomic, write_text_atomic
    from tasks.store.config_loader import (
        ConfigError,
        LoadedConfig,
        load_config,
        resolve_cassette,
        resolve_output_dir,
        resolve_prompt_overrides,
        resolve_results_storage,
        with_overrides,
    )
    from tasks.store.paths import OutputLayout

__all__ = [
    "ArtifactInvalid",
    "ArtifactNotFound",
    "ArtifactStore",
    "ConfigError",
    "CorruptObject",
    "LoadedConfig",
    "ManifestInvalid",
    "MissingStepOutput",
    "OutputLayout",
    "StoreError",
    "UnusableStepOutput",
    "load_config",
    "resolve_cassette",
    "resolve_output_dir",
    "resolve_prompt_overrides",
    "resolve_results_storage",
    "with_overrides",
    "write_json_atomic",
    "write_text_atomic",
]

_EXPORTS = {
    "tasks.store.artifacts": (
        "ArtifactInvalid",
        "ArtifactNotFound",
        "ArtifactStore",
        "CorruptObject",
        "ManifestInvalid",
        "MissingStepOutput",
        "StoreError",
        "UnusableStepOutput",
    ),
    "tasks.store.atomic": ("write_json_atomic", "write_text_atomic"),
    "tasks.store.config_loader": (
        "ConfigError",
        "LoadedConfig",
        "load_config",
        "resolve_cassette",
        "resolve_output_dir",
        "resolve_prompt_overrides",
        "resolve_results_storage",
        "with_overrides",
    ),
    "tasks.store.paths": ("OutputLayout",),
}
_SOURCES = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(source), name)

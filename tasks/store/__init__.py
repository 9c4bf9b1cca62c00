"""The only filesystem and LanceDB code: output locations (a local folder or an
fsspec URL such as `s3://bucket/prefix`), output layout, atomic writes, append-only
journals, the artifact store with lineage records and step manifests (checked on
read), the run lock, lineage queries, configuration loading, vector tables, the
storage check made before a run, and staging of a server's files for serving.

Inputs: an output root (path or URL), artifacts, configuration files. Output: the
classes and functions re-exported here (`tasks.store.vectors` is imported on its
own, as LanceDB is slow to import). Side effects: none at import; writes happen only
through the store's methods.
"""

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

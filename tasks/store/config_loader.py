"""Load and check `config.yaml` files into a typed `PipelineConfig`.

Input: a YAML file path (and optional overrides). Output: `LoadedConfig` (the
validated config, its file and directory, and its stable hash), or a `ConfigError`
whose one-paragraph message names the file, each offending key as a dotted path with
its line, and what is wrong: unknown keys list the keys allowed there, wrong types
name the expected type, malformed YAML gives line and column, duplicate keys are
refused. Also resolves the paths a config names: `run.output_dir` and
`run.results_storage` against the data directory or the current working directory,
`llm.cassette` and `llm.prompt_overrides` against the config file's directory. Side
effects: reads the file.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from schemas.base import stable_hash
from schemas.config import PipelineConfig
from tasks.store.location import StorePath, is_url, store_path
from tasks.store.paths import OutputLayout


class ConfigError(Exception):
    """A configuration file (or override) is unusable; the message says why.

    Attributes:
        path: The configuration file.
        problems: One `(key path, message)` pair per problem found.
    """

    def __init__(
        self, message: str, *, path: Path, problems: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration and where it came from."""

    config: PipelineConfig
    path: Path
    config_dir: Path
    config_hash: str


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain PyYAML keeps the last one)."""

    def construct_mapping(self, node: Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool):
                    continue
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path) -> LoadedConfig:
    """Read, parse and validate a configuration file.

    Args:
        path: The YAML file.

    Returns:
        The validated configuration with its path, directory and hash.

    Raises:
        ConfigError: If the file is missing or unreadable, is not YAML, is not a
            mapping, fails validation, or (replay mode) names a missing cassette.
    """
    path = path.expanduser().absolute()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"config file {path} cannot be read: {exc}", path=path
        ) from exc
    root, data = _parse_yaml(text, path)
    if not isinstance(data, dict):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        allowed = ", ".join(PipelineConfig.model_fields)
        raise ConfigError(
            f"config file {path}: the top level must be a mapping with the sections "
            f"{allowed}, but it is {found}",
            path=path,
        )
    config = _validate(data, path, root)
    return _finish(config, path)


def with_overrides(
    loaded: LoadedConfig,
    output_dir: str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
) -> LoadedConfig:
    """Return a copy of `loaded` with some values replaced and re-validated.

    Args:
        loaded: The loaded configuration.
        output_dir: New `run.output_dir`; None keeps the configured one.
        overrides: Dotted key path -> value, e.g.
            `{"steps.s01_domain_expansion.target_domain_number": 20}`.

    Returns:
        The new configuration with a recomputed hash.

    Raises:
        ConfigError: If an override names an unknown key or has a wrong value.
    """
    if output_dir is None and not overrides:
        return loaded
    data = loaded.config.model_dump(mode="json")
    changes = dict(overrides or {})
    if output_dir is not None:
        changes["run.output_dir"] = output_dir
    for dotted, value in changes.items():
        _set_dotted(data, dotted, value, loaded.path)
    config = _validate(data, loaded.path, None, source="overrides of config file")
    return _finish(config, loaded.path)


def resolve_output_dir(
    loaded: LoadedConfig, cwd: Path, *, data_dir: Path | None = None
) -> StorePath:
    """Absolute output location of a run: a path, or a `RemotePath` for a URL.

    A relative `run.output_dir` is taken relative to `data_dir` when given (the
    `AGENTSKILLER_DATA_DIR` setting), else to `cwd`, the directory the command runs
    in; it is not relative to the config file, so one config serves many checkouts.
    A URL (`s3://bucket/prefix`) carries `run.storage_options`.
    """
    run = loaded.config.run
    if is_url(run.output_dir):
        return store_path(run.output_dir, run.storage_options)
    out = Path(run.output_dir).expanduser()
    if out.is_absolute():
        return out
    return (data_dir if data_dir is not None else cwd) / out


def resolve_results_storage(
    loaded: LoadedConfig, cwd: Path, *, data_dir: Path | None = None
) -> str:
    """Prefect result storage of a run: a URL as given, or an absolute path.

    Unset means `<output_dir>/.agentskiller/prefect-results` (a URL when the output
    location is one); a relative path is resolved like `run.output_dir`.
    """
    configured = loaded.config.run.results_storage
    if configured is None:
        root = resolve_output_dir(loaded, cwd, data_dir=data_dir)
        return str(OutputLayout(root).prefect_results_dir)
    if "://" in configured:
        return configured
    storage = Path(configured).expanduser()
    if not storage.is_absolute():
        storage = (data_dir if data_dir is not None else cwd) / storage
    return str(storage)


def resolve_cassette(loaded: LoadedConfig) -> Path | None:
    """Absolute cassette path (relative paths are relative to the config file)."""
    return _next_to_config(loaded, loaded.config.llm.cassette)


def resolve_prompt_overrides(loaded: LoadedConfig) -> Path | None:
    """Absolute prompt override folder (relative to the config file), if any."""
    return _next_to_config(loaded, loaded.config.llm.prompt_overrides)


def _next_to_config(loaded: LoadedConfig, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else loaded.config_dir / path


def _finish(config: PipelineConfig, path: Path) -> LoadedConfig:
    loaded = LoadedConfig(
        config=config,
        path=path,
        config_dir=path.parent,
        config_hash=stable_hash(config.model_dump(mode="json")),
    )
    cassette = resolve_cassette(loaded)
    if config.llm.mode == "replay" and cassette is not None and not cassette.exists():
        raise ConfigError(
            f"config file {path}: llm.cassette: replay mode reads the cassette "
            f"{cassette}, which does not exist (paths are relative to the config file)",
            path=path,
            problems=(("llm.cassette", f"file {cassette} does not exist"),),
        )
    return loaded


def _parse_yaml(text: str, path: Path) -> tuple[Node | None, Any]:
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(
            f"config file {path} is not valid YAML: {problem}{where}", path=path
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config file {path} is not valid YAML: {exc}", path=path
        ) from None
    finally:
        loader.dispose()
    return node, data


def _validate(
    data: dict[str, Any], path: Path, root: Node | None, *, source: str = "config file"
) -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        found = [_describe_error(error, root) for error in exc.errors()]
        listed = "; ".join(
            f"{key} (line {line}): {message}" if line else f"{key}: {message}"
            for key, line, message in found
        )
        count = f"{len(found)} problem" + ("s" if len(found) > 1 else "")
        raise ConfigError(
            f"{source} {path} is invalid, {count}: {listed}",
            path=path,
            problems=tuple((key, message) for key, _, message in found),
        ) from None


def _describe_error(error: Any, root: Node | None) -> tuple[str, int | None, str]:
    """Key path, line (if known) and explanation of one pydantic error."""
    loc = tuple(error["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc = loc[:-1]
    key, line = _dotted(loc), _line_of(root, loc)
    kind: str = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    got = f"got {error['input']!r}"
    if kind == "extra_forbidden":
        where = _dotted(loc[:-1]) if loc[:-1] else "the top level"
        message = f"unknown key; allowed keys at {where}: {_allowed_keys(loc[:-1])}"
    elif kind == "missing":
        message = "required key is missing"
    elif is_key:
        message = f"invalid key {loc[-1]!r}: {message}"
    elif kind.endswith(("_type", "_parsing")) or kind == "model_attributes_type":
        message = f"wrong type: expected {_describe_type(_annotation_at(loc))}, {got}"
    elif kind.startswith(("literal_", "greater_", "less_", "string_", "too_")):
        message = f"{message}, {got}"
    return key, line, message


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _line_of(root: Node | None, loc: tuple[Any, ...]) -> int | None:
    node, line = root, None
    for part in loc:
        if isinstance(node, MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, ScalarNode) and key_node.value == str(part):
                    node, line = value_node, key_node.start_mark.line + 1
                    break
            else:
                break
        elif isinstance(node, SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated` and a `None` member of a union."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _annotation_at(loc: tuple[Any, ...]) -> Any:
    annotation: Any = PipelineConfig
    for part in loc:
        annotation = _unwrap(annotation)
        origin = get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return None
            annotation = field.annotation
        elif origin is dict:
            annotation = get_args(annotation)[1]
        elif origin in (list, tuple, set, frozenset):
            annotation = get_args(annotation)[0]
        else:
            return None
    return annotation


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    annotation = _unwrap(_annotation_at(loc))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        names = list(annotation.model_fields)
        return ", ".join(names) if names else "(none: this section takes no keys)"
    return "(unknown)"


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean (true/false)",
}


def _describe_type(annotation: Any) -> str:
    if annotation is None:
        return "a different type"
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(
            "null" if a is type(None) else _describe_type(a)
            for a in get_args(annotation)
        )
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if origin in (list, tuple, set, frozenset):
        return f"a list of {_plural(_describe_type(get_args(annotation)[0]))}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"a mapping from {_describe_type(key)} to {_describe_type(value)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a mapping with keys {', '.join(annotation.model_fields)}"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plural(description: str) -> str:
    for article in ("a ", "an "):
        if description.startswith(article):
            return description.removeprefix(article) + "s"
    return description


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, path: Path) -> None:
    parts = dotted.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part) if isinstance(node, dict) else None
        if child is None:
            child = {}
            node[part] = child
        if not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(
                f"override {dotted}: {where} is not a section, cannot set a key in it",
                path=path,
                problems=((dotted, f"{where} is not a section"),),
            )
        node = child
    node[parts[-1]] = value

"""Atomic file writes: a reader sees the old file or the new one, never a torn one.

Input: a destination (a local path, or a `RemotePath` at an fsspec URL) and the
data (JSON-compatible values, pydantic models or text). Output: the written
location. Side effects: locally, parent directories are created; the content goes
to a uniquely named temporary file in the destination directory, which then
replaces the destination with `os.replace`. At a URL the whole content is sent in
one PUT, which an object store applies atomically (no folders, no temporary
object). Concurrent writers of the same path never corrupt it: the last write wins.
There is no fsync: the guarantee is against crashed or concurrent processes, not
power loss.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from tasks.store.location import RemotePath, StorePath


def write_bytes_atomic(path: StorePath, data: bytes) -> StorePath:
    """Write bytes to `path` atomically.

    Args:
        path: Destination file (its parent directories are created), or object.
        data: The complete new content.

    Returns:
        `path`.
    """
    if isinstance(path, RemotePath):
        path.write_bytes(data)
        return path
    try:
        fd, tmp_name = _create_temp(path)
    except FileNotFoundError:  # the folder is new: make it, then try again
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            # outputs are read like any file (by the sandbox's user, too),
            # whatever the umask
            os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


_temp_names = itertools.count()


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, exclusively created temporary file beside `path`: (fd, its path).

    Its name holds this process's id, a per-process counter and a random part,
    so concurrent writers (threads, processes, hosts sharing the folder) never
    pick the same one; a clash is still refused by O_EXCL and retried."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = (
            f".{path.name}.{os.getpid()}-{next(_temp_names)}-{os.urandom(4).hex()}.tmp"
        )
        tmp = os.path.join(path.parent, name)
        try:
            return os.open(tmp, flags, 0o644), tmp
        except FileExistsError:
            continue


def write_text_atomic(path: StorePath, text: str) -> StorePath:
    """Write UTF-8 text to `path` atomically (no newline translation).

    Args:
        path: Destination file; its parent directories are created.
        text: The complete new content.

    Returns:
        `path`.
    """
    return write_bytes_atomic(path, text.encode("utf-8"))


def dumps_json(data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """Serialise like `write_json_atomic` does, ending with a newline.

    Args:
        data: JSON-compatible value, or a pydantic model (dumped in JSON mode).
        indent: Indentation; None gives one line.
        sort_keys: Sort mapping keys, for byte-stable files.

    Returns:
        The JSON text, non-ASCII characters kept as is.
    """
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", serialize_as_any=True)
    if indent == 2:
        # orjson writes the same text as `json.dumps` (keys sorted by code point,
        # two-space indentation, UTF-8 kept) about ten times faster than the
        # pure-Python encoder `json` uses for indented output; the visible
        # differences: the exponent of tiny floats (1e-7, not 1e-07) and NaN or
        # infinity written as null (json writes the non-JSON NaN).
        options = orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        if sort_keys:
            options |= orjson.OPT_SORT_KEYS
        try:
            return orjson.dumps(data, option=options).decode("utf-8")
        except orjson.JSONEncodeError:
            pass  # integers beyond 64 bits, non-string keys, NaN: json decides
    text = json.dumps(data, indent=indent, ensure_ascii=False, sort_keys=sort_keys)
    return text + "\n"


def write_json_atomic(
    path: StorePath, data: Any, *, indent: int | None = 2, sort_keys: bool = False
) -> StorePath:
    """Write `data` as UTF-8 JSON to `path` atomically.

    Args:
        path: Destination file; its parent directories are created.
        data: JSON-compatible value, or a pydantic model (dumped in JSON mode).
        indent: Indentation; None gives one line.
        sort_keys: Sort mapping keys, for byte-stable files.

    Returns:
        `path`.

    Raises:
        TypeError: If `data` is not JSON-serialisable (nothing is written).
    """
    return write_text_atomic(path, dumps_json(data, indent=indent, sort_keys=sort_keys))

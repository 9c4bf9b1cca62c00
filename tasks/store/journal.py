"""Append-only JSON-lines files that survive crashes of their writers.

Input: a path and one line of text (or a whole file to read back). Output: the lines
that are complete and parse, plus how many were skipped. Side effects:
`create_journal` creates an empty file; `append_line` creates the parent folder and
appends with one `os.write` on an `O_APPEND` file
descriptor, so lines from concurrent threads or processes never interleave and a
killed writer leaves at most one torn last line. There is no fsync: the guarantee is
against crashed or concurrent processes, not power loss. An object store has no
append: a journal at a URL (`RemotePath`) belongs to one process (the ledger gives
each process its own part), which keeps the journal's content and replaces the
whole object with one PUT per line, so a reader sees every line up to some point
and a killed writer loses nothing it had appended.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tasks.store.location import RemotePath, StorePath

T = TypeVar("T")


class JournalWriteError(OSError):
    """A line could not be appended completely."""


# Content of the journals this process writes at URLs, by URL.
_REMOTE: dict[str, bytes] = {}
_REMOTE_LOCK = threading.Lock()


def create_journal(path: StorePath) -> None:
    """Create an empty journal (and its folder) unless it exists."""
    if isinstance(path, RemotePath):
        path.create(b"")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644))


def append_line(path: StorePath, line: str) -> None:
    """Append one line (a newline is added) to `path` in a single write.

    Args:
        path: The journal file; it and its folder are created when missing.
        line: One line of text without a newline.

    Raises:
        ValueError: If `line` contains a newline (it would read back as two lines).
        JournalWriteError: If the system wrote only part of the line (disk full).
    """
    if "\n" in line or "\r" in line:
        raise ValueError("a journal line must not contain a line break")
    data = (line + "\n").encode("utf-8")
    if isinstance(path, RemotePath):
        _append_remote(path, data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
    finally:
        os.close(fd)
    if written != len(data):
        raise JournalWriteError(
            f"only {written} of {len(data)} bytes of a line were appended to {path}"
        )


def _append_remote(path: RemotePath, data: bytes) -> None:
    with _REMOTE_LOCK:
        known = _REMOTE.get(path.url)
        if known is None:
            try:
                known = path.read_bytes()
            except FileNotFoundError:
                known = b""
        content = known + data
        path.write_bytes(content)  # one PUT of the whole journal
        _REMOTE[path.url] = content


@dataclass
class JournalRead(Generic[T]):
    """What reading a journal gave.

    Attributes:
        entries: The parsed complete lines, in file order.
        problems: One short description per skipped line (`line N: why`).
    """

    entries: list[T] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        """Lines that were torn (no final newline) or did not parse."""
        return len(self.problems)


def read_lines(path: StorePath, parse: Callable[[str], T]) -> JournalRead[T]:
    """Read a journal, keeping every complete line that `parse` accepts.

    A last line without a newline is what a writer killed mid-write leaves; it is
    skipped and counted, as is any line `parse` rejects with `ValueError` (which
    includes JSON and pydantic validation errors).

    Args:
        path: The journal file; a missing file reads as empty.
        parse: Turns one line (without newline) into an entry.

    Returns:
        The entries and the count of skipped lines.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return JournalRead()
    chunks = data.split(b"\n")
    tail = chunks.pop()  # empty when the file ends with a newline
    result: JournalRead[T] = JournalRead()
    for number, chunk in enumerate(chunks, start=1):
        if not chunk.strip():
            continue
        try:
            result.entries.append(parse(chunk.decode("utf-8")))
        except ValueError as exc:
            why = f"{type(exc).__name__}: {str(exc)[:120]}"
            result.problems.append(f"line {number}: {why}")
    if tail:
        result.problems.append(f"line {len(chunks) + 1}: torn (no line end)")
    return result

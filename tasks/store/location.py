"""Where a store lives: a local folder, or an fsspec URL such as `s3://bucket/prefix`.

Input: a location (a path, or a URL with its fsspec storage options). Output:
`store_path` gives a `pathlib.Path` for a folder and a `RemotePath` for a URL; a
`RemotePath` offers the part of the `pathlib` API the store uses (join, name,
parent, read, exists, glob, stat, unlink) plus whole-object writes, so store code
reads the same for both. Side effects: a `RemotePath` reads and writes objects
through fsspec; each write is one PUT of the whole object, so a reader sees the old
object or the new one, never a part of either. Nothing happens at import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

# fsspec caches directory listings per process; a store shared by several processes
# must see what the others wrote, so listings are read fresh unless asked otherwise.
DEFAULT_STORAGE_OPTIONS: dict[str, Any] = {"use_listings_cache": False}


def is_url(location: str | Path) -> bool:
    """Whether `location` is an fsspec URL other than `file://`."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def store_path(
    location: str | Path, storage_options: Mapping[str, Any] | None = None
) -> Path | RemotePath:
    """The location as a local path or a `RemotePath`.

    Args:
        location: A path (`~` is expanded; `file://` is a path) or an fsspec URL.
        storage_options: fsspec options for a URL (ignored for a path).
    """
    if isinstance(location, RemotePath):
        return location
    if is_url(location):
        return RemotePath.of(str(location), storage_options)
    return Path(str(location).removeprefix("file://")).expanduser()


@dataclass(frozen=True)
class RemoteStat:
    """The two `os.stat_result` fields the store reads."""

    st_mtime: float
    st_size: int


@dataclass(frozen=True, order=True)
class RemotePath:
    """One object or prefix at an fsspec URL.

    Attributes:
        url: `protocol://bucket/key`, without a trailing slash.
        options_json: The fsspec storage options as canonical JSON (kept as text
            so the value stays hashable and picklable).
    """

    url: str
    options_json: str = "{}"

    @classmethod
    def of(
        cls, url: str, storage_options: Mapping[str, Any] | None = None
    ) -> RemotePath:
        protocol, sep, rest = url.partition("://")
        if not sep or not protocol or not rest.strip("/"):
            raise ValueError(f"{url!r} is not a URL of the form protocol://bucket/key")
        options = {**DEFAULT_STORAGE_OPTIONS, **dict(storage_options or {})}
        return cls(
            f"{protocol}://{rest.strip('/')}", json.dumps(options, sort_keys=True)
        )

    # Names ---------------------------------------------------------------------

    @property
    def protocol(self) -> str:
        return self.url.partition("://")[0]

    @property
    def key(self) -> str:
        """The path without the protocol, as fsspec takes it (`bucket/key`)."""
        return self.url.partition("://")[2]

    @property
    def bucket(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def storage_options(self) -> dict[str, Any]:
        return json.loads(self.options_json)

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.key).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.key).suffix

    @property
    def parent(self) -> RemotePath:
        parent = PurePosixPath(self.key).parent.as_posix()
        if parent in ("", "."):
            return self
        return RemotePath(f"{self.protocol}://{parent}", self.options_json)

    def joinpath(self, *parts: str) -> RemotePath:
        """The location of `parts` (relative POSIX paths) below this one.

        Raises:
            ValueError: If a part is absolute or climbs with `..`.
        """
        pure = PurePosixPath(*parts) if parts else PurePosixPath()
        if pure.is_absolute() or ".." in pure.parts:
            raise ValueError(f"{'/'.join(parts)!r} must stay below {self.url}")
        joined = "/".join((self.key, *pure.parts))
        return RemotePath(f"{self.protocol}://{joined}", self.options_json)

    def __truediv__(self, part: str) -> RemotePath:
        return self.joinpath(part)

    def __str__(self) -> str:
        return self.url

    def as_posix(self) -> str:
        return self.url

    def is_absolute(self) -> bool:
        return True

    def is_relative_to(self, other: RemotePath) -> bool:
        return self.url == other.url or self.url.startswith(other.url + "/")

    def relative_to(self, other: RemotePath) -> PurePosixPath:
        """This location relative to `other`.

        Raises:
            ValueError: If it is not below `other`.
        """
        if not self.is_relative_to(other):
            raise ValueError(f"{self.url} is not inside {other.url}")
        return PurePosixPath(self.url[len(other.url) :].lstrip("/") or ".")

    # I/O -----------------------------------------------------------------------

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (fsspec caches instances per process)."""
        import fsspec

        return fsspec.filesystem(self.protocol, **self.storage_options)

    def read_bytes(self) -> bytes:
        """The object's bytes.

        Raises:
            FileNotFoundError: If there is no such object.
        """
        return self.fs.cat_file(self.key)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> int:
        """Replace the object with `data` in one PUT (readers never see a part)."""
        self.fs.pipe_file(self.key, bytes(data))
        return len(data)

    def write_text(self, text: str, encoding: str = "utf-8") -> int:
        return self.write_bytes(text.encode(encoding))

    def create(self, data: bytes) -> bool:
        """Write the object only if it does not exist (a conditional PUT,
        `If-None-Match: *` on S3), so concurrent creators cannot both succeed.

        Returns:
            True when this call created it, False when it existed already.
        """
        try:
            self.fs.pipe_file(self.key, bytes(data), mode="create")
        except FileExistsError:
            return False
        return True

    def exists(self) -> bool:
        return bool(self.fs.exists(self.key))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.key))

    def is_dir(self) -> bool:
        """Whether any object lies below this prefix."""
        return bool(self.fs.isdir(self.key))

    def stat(self) -> RemoteStat:
        """Size and modification time of the object.

        Raises:
            FileNotFoundError: If there is no such object.
        """
        info = self.fs.info(self.key)
        modified = info.get("LastModified") or info.get("mtime") or info.get("created")
        if isinstance(modified, datetime):
            mtime = modified.timestamp()
        else:
            mtime = float(modified or 0.0)
        return RemoteStat(st_mtime=mtime, st_size=int(info.get("size") or 0))

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.key)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def iterdir(self) -> Iterator[RemotePath]:
        """The objects and prefixes directly below this prefix."""
        if not self.is_dir():
            return
        for found in sorted(self.fs.ls(self.key, detail=False)):
            yield self._child(found)

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """Objects directly below this prefix whose name matches `pattern`."""
        if "/" in pattern or "**" in pattern:
            raise ValueError(f"glob pattern {pattern!r} must name files of one level")
        for found in sorted(self.fs.glob(f"{self.key}/{pattern}")):
            yield self._child(found)

    def rglob(self, pattern: str) -> Iterator[RemotePath]:
        """Objects at any depth below this prefix whose name matches `pattern`."""
        for found in sorted(self.fs.glob(f"{self.key}/**/{pattern}")):
            yield self._child(found)

    def _child(self, found: str) -> RemotePath:
        key = found.partition("://")[2] if "://" in found else found
        return RemotePath(f"{self.protocol}://{key.strip('/')}", self.options_json)


StorePath = Path | RemotePath
"""A location in a store: a local path or an object at an fsspec URL."""


def endpoint_of(root: RemotePath, env: Mapping[str, str]) -> str | None:
    """The S3 endpoint a location talks to: its storage options' `endpoint_url`
    (or `client_kwargs.endpoint_url`), else `AWS_ENDPOINT_URL`; None means the
    backend's default (AWS itself for `s3://`)."""
    options = root.storage_options
    client = options.get("client_kwargs") or {}
    found = options.get("endpoint_url") or client.get("endpoint_url")
    return found or env.get("AWS_ENDPOINT_URL") or None


def lance_storage_options(
    root: Path | RemotePath, env: Mapping[str, str]
) -> dict[str, str]:
    """LanceDB's `storage_options` for a table folder at `root`.

    LanceDB (object_store) reads the standard `AWS_*` variables itself, including
    `AWS_ENDPOINT_URL`, but refuses a plain-http endpoint unless told; options given
    to fsspec as `endpoint_url`, `key`, `secret`, `token` are passed on under
    LanceDB's names.
    """
    if not isinstance(root, RemotePath) or root.protocol not in ("s3", "s3a"):
        return {}
    options = root.storage_options
    lance: dict[str, str] = {}
    endpoint = endpoint_of(root, env)
    if endpoint:
        lance["aws_endpoint"] = endpoint
        if endpoint.startswith("http://"):
            lance["allow_http"] = "true"
    for ours, theirs in (
        ("key", "aws_access_key_id"),
        ("secret", "aws_secret_access_key"),
        ("token", "aws_session_token"),
    ):
        if options.get(ours):
            lance[theirs] = str(options[ours])
    region = (options.get("client_kwargs") or {}).get("region_name")
    if region:
        lance["aws_region"] = str(region)
    return lance

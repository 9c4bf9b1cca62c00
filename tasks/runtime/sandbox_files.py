"""File-system walls of one sandbox run: permission grants, ownership and removal.

Inputs: paths of a run (its scratch tree, the paths it may read). Outputs: the
paths whose mode changed. Side effects, used only when running as root with
privilege dropping available: `chmod` adds other-execute (traverse, never list
or write) to the ancestors of the interpreter and of the run's readable paths and
other-read to the trees of `read_only_paths`; `chown` gives the scratch tree to the
run's uid; `remove_tree` deletes a run directory whatever modes the program left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Protocol


class SandboxSetupError(RuntimeError):
    """The host could not prepare or start a sandboxed run."""


class _Owner(Protocol):
    @property
    def uid(self) -> int: ...

    @property
    def gid(self) -> int: ...


def grant_traverse(path: str) -> list[str]:
    """Add other-execute to `path` (if a directory) and each of its ancestors.

    Args:
        path: Any path; missing paths are ignored.

    Returns:
        The directories whose mode changed.
    """
    changed = []
    current = os.path.realpath(path)
    if not os.path.isdir(current):
        current = os.path.dirname(current)
    while True:
        mode = os.stat(current).st_mode
        if not mode & stat.S_IXOTH:
            os.chmod(current, stat.S_IMODE(mode) | stat.S_IXOTH)
            changed.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            return changed
        current = parent


def grant_read_tree(path: str) -> list[str]:
    """Make a directory tree readable by others (never writable) and reachable.

    Args:
        path: An existing file or directory.

    Returns:
        The paths whose mode changed.
    """
    changed = grant_traverse(path)
    real = os.path.realpath(path)
    targets = [real]
    if os.path.isdir(real):
        for root, dirs, files in os.walk(real):
            targets.extend(os.path.join(root, name) for name in (*dirs, *files))
    for target in targets:
        info = os.lstat(target)
        if stat.S_ISLNK(info.st_mode):
            continue
        wanted = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(info.st_mode) else 0)
        if info.st_mode & wanted != wanted:
            os.chmod(target, stat.S_IMODE(info.st_mode) | wanted)
            changed.append(target)
    return changed


def chown_tree(path: Path, identity: _Owner) -> None:
    """Give a directory tree to the run's identity (symlinks themselves included)."""
    os.chown(path, identity.uid, identity.gid)
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(os.path.join(root, name), identity.uid, identity.gid)


def remove_tree(path: Path) -> None:
    """Delete a run directory, restoring permissions the program may have removed.

    Only entries inside the tree are ever given back their permissions: the
    directory that holds the tree (the shared `runs` directory) is never touched,
    even when removing the tree's root fails (it is already gone, say), or every
    later sandbox start would find `runs` with the wrong mode and refuse it.
    """
    root = os.path.abspath(path)

    def _inside(target: str) -> bool:
        return target == root or target.startswith(root + os.sep)

    def _retry(func: Callable[..., object], target: str, _exc: object) -> None:
        target = os.path.abspath(target)
        for fixable in (os.path.dirname(target), target):
            # never through a symlink the program planted (chmod follows links)
            if _inside(fixable) and not os.path.islink(fixable):
                with contextlib.suppress(OSError):
                    os.chmod(fixable, stat.S_IRWXU)
        if not _inside(target) or not os.path.lexists(target):
            return  # removed meanwhile (a concurrent sweep): nothing left to do
        with contextlib.suppress(FileNotFoundError):
            if func in (os.rmdir, os.unlink):
                func(target)
            elif os.path.isdir(target) and not os.path.islink(target):
                # opening or listing it failed (os.open, os.scandir, os.lstat):
                # its permissions are back, so remove what is below it again
                shutil.rmtree(target, onerror=_retry)
            else:
                os.unlink(target)

    shutil.rmtree(root, onerror=_retry)

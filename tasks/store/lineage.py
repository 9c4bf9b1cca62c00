"""Lineage queries over an artifact store: find the store a file belongs to, resolve
a target, walk ancestors or descendants, and render the result as a text tree.

Inputs: an `ArtifactStore` and a target (an export path, a content hash or unique
prefix, or `kind:id`) or an `ArtifactRef`; for `find_output_root`, any path. Output:
`ArtifactRef` lists and `LineageNode` trees; `render` turns a tree into one line per
artifact; `find_output_root` gives the output directory above a path. No side
effects: the store is only read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from schemas.artifact import ArtifactKind, ArtifactRef, Producer
from tasks.store.artifacts import ArtifactNotFound, ArtifactStore, StoreError
from tasks.store.location import is_url, store_path
from tasks.store.paths import OutputLayout

MIN_PREFIX = 8
_KINDS = frozenset(get_args(ArtifactKind))


class UnknownTarget(StoreError):
    """A lineage target matches no artifact (or is ambiguous in a way we refuse)."""


@dataclass(frozen=True)
class LineageNode:
    """One artifact in a lineage tree.

    Attributes:
        ref: The artifact.
        producer: What produced it; None when it is missing from the store.
        missing: Neither its object nor its lineage record is stored.
        repeat: Already expanded elsewhere in this tree; children are not repeated.
        children: Parents (for `ancestry`) or products (for `descendants`).
    """

    ref: ArtifactRef
    producer: Producer | None
    missing: bool = False
    repeat: bool = False
    children: tuple[LineageNode, ...] = ()


def find_output_root(path: Path) -> Path | None:
    """The output directory `path` is in: the nearest folder at or above it that
    holds the internal `.agentskiller/` folder.

    The path itself need not exist (a mistyped file name still finds its run).

    Args:
        path: A file or folder, absolute or relative to the working directory.

    Returns:
        The resolved output directory, or None when no folder above `path` is one.
    """
    resolved = path.expanduser().resolve()
    for folder in (resolved, *resolved.parents):
        if OutputLayout(folder).internal.is_dir():
            return folder
    return None


def resolve(store: ArtifactStore, target: str) -> list[ArtifactRef]:
    """Find the artifacts a user means by `target`.

    Tried in order: an export path (absolute, or relative to the output root) looked
    up in the step manifests' `exports`; `kind:id`; a content hash or a unique
    prefix of at least 8 hex digits.

    Args:
        store: The store to search.
        target: What the user typed.

    Returns:
        The matching refs. For `kind:id`, versions named by a current step manifest
        come first, then older versions, each group ordered by hash.

    Raises:
        UnknownTarget: If nothing matches, or a hash prefix is too short or
            ambiguous.
    """
    target = target.strip()
    by_export = _resolve_export(store, target)
    if by_export is not None:
        return [by_export]
    kind, sep, ident = target.partition(":")
    if sep and kind in _KINDS:
        return _resolve_kind_id(store, kind, ident, target)
    lowered = target.lower()
    if lowered and all(c in "0123456789abcdef" for c in lowered):
        return _resolve_hash(store, lowered)
    if "/" in target or Path(target).suffix:
        raise UnknownTarget(
            f"{target} is not an output file of this run: no step manifest under "
            f"{store.layout.root} lists it"
        )
    raise UnknownTarget(
        f"{target!r} is not an export path listed in any step manifest under "
        f"{store.layout.root}, not kind:id (kinds: {', '.join(sorted(_KINDS))}), "
        "and not a content hash"
    )


def ancestry(store: ArtifactStore, ref: ArtifactRef) -> LineageNode:
    """The tree of everything `ref` was built from (its parents, recursively).

    A sub-tree reached twice is expanded once; later occurrences are marked
    `repeat`.
    """
    return _build(store, ref, lambda node_ref, parents: parents, set())


def descendants(store: ArtifactStore, ref: ArtifactRef) -> LineageNode:
    """The tree of everything built from `ref` (its children, recursively).

    Children are found through an inverted index over all lineage records and are
    ordered by kind, id and hash.
    """
    children: dict[str, list[ArtifactRef]] = defaultdict(list)
    for record in store.iter_lineage():
        for parent in record.parents:
            children[parent.content_hash].append(record.ref)
    for refs in children.values():
        refs.sort(key=lambda r: (r.kind, r.id, r.content_hash))
    return _build(
        store,
        ref,
        lambda node_ref, parents: tuple(children.get(node_ref.content_hash, ())),
        set(),
    )


def render(node: LineageNode) -> str:
    """Render a tree, one line per artifact, two spaces of indent per level.

    Each line reads `kind id  hash[:12]  step=... model=... prompt=...`; a missing
    artifact reads `(missing: kind id hash[:12])`, a repeated one ends with
    `(see above)`.
    """
    lines: list[str] = []
    _render_into(node, 0, lines)
    return "\n".join(lines)


def _render_into(node: LineageNode, depth: int, lines: list[str]) -> None:
    ref = node.ref
    indent = "  " * depth
    if node.missing or node.producer is None:
        lines.append(f"{indent}(missing: {ref.kind} {ref.id} {ref.content_hash[:12]})")
    else:
        producer = node.producer
        line = (
            f"{indent}{ref.kind} {ref.id}  {ref.content_hash[:12]}  "
            f"step={producer.step} model={producer.model_id or '-'} "
            f"prompt={producer.prompt_id or '-'}"
        )
        lines.append(f"{line}  (see above)" if node.repeat else line)
    for child in node.children:
        _render_into(child, depth + 1, lines)


def _build(
    store: ArtifactStore,
    ref: ArtifactRef,
    next_refs: Callable[
        [ArtifactRef, tuple[ArtifactRef, ...]], tuple[ArtifactRef, ...]
    ],
    expanded: set[str],
) -> LineageNode:
    producer, parents = _describe(store, ref)
    if producer is None:
        return LineageNode(ref=ref, producer=None, missing=True)
    if ref.content_hash in expanded:
        return LineageNode(ref=ref, producer=producer, repeat=True)
    expanded.add(ref.content_hash)
    children = tuple(
        _build(store, child, next_refs, expanded) for child in next_refs(ref, parents)
    )
    return LineageNode(ref=ref, producer=producer, children=children)


def _describe(
    store: ArtifactStore, ref: ArtifactRef
) -> tuple[Producer | None, tuple[ArtifactRef, ...]]:
    record = store.lineage(ref.content_hash)
    if record is not None:
        return record.producer, record.parents
    try:
        raw = store.get_raw(ref.content_hash)
    except ArtifactNotFound:
        return None, ()
    parents = tuple(ArtifactRef.model_validate(p) for p in raw.get("parents", ()))
    return Producer.model_validate(raw["producer"]), parents


def _resolve_export(store: ArtifactStore, target: str) -> ArtifactRef | None:
    path = store_path(target) if is_url(target) else Path(target)
    try:
        relpath = store.layout.relpath(path)
    except ValueError:
        return None
    for manifest in store.iter_manifests():
        ref = manifest.exports.get(relpath)
        if ref is not None:
            return ref
    return None


def _resolve_kind_id(
    store: ArtifactStore, kind: str, ident: str, target: str
) -> list[ArtifactRef]:
    current = {
        ref
        for manifest in store.iter_manifests()
        for ref in (*manifest.outputs, *manifest.exports.values())
        if ref.kind == kind and ref.id == ident
    }
    historic = {
        record.ref
        for record in store.iter_lineage()
        if record.ref.kind == kind and record.ref.id == ident
    }
    ordered = sorted(current, key=lambda r: r.content_hash)
    ordered += sorted(historic - current, key=lambda r: r.content_hash)
    if not ordered:
        raise UnknownTarget(
            f"no artifact {target} in the store under {store.layout.root}"
        )
    return ordered


def _resolve_hash(store: ArtifactStore, prefix: str) -> list[ArtifactRef]:
    if len(prefix) < MIN_PREFIX:
        raise UnknownTarget(
            f"hash prefix {prefix!r} is too short: give {MIN_PREFIX} or more hex digits"
        )
    matches = store.match_prefix(prefix)
    if not matches:
        raise UnknownTarget(f"no artifact with content hash starting {prefix!r}")
    if len(matches) > 1:
        shown = ", ".join(m[:16] for m in matches)
        raise UnknownTarget(f"hash prefix {prefix!r} is ambiguous: {shown}")
    return [_ref_of(store, matches[0])]


def _ref_of(store: ArtifactStore, digest: str) -> ArtifactRef:
    record = store.lineage(digest)
    if record is not None:
        return record.ref
    raw = store.get_raw(digest)
    return ArtifactRef(kind=raw["kind"], id=raw["id"], content_hash=digest)

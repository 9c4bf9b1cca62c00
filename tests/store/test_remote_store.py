"""The store at an `s3://` URL, against a real S3-compatible server (moto's, on
127.0.0.1): artifacts, lineage and manifests, the run lock object, ledger journals,
LanceDB tables, staging for serving, and the storage check run before any work."""

from __future__ import annotations

import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from schemas.store import RunLockHolder
from tasks.store import lineage
from tasks.store.artifacts import ArtifactStore
from tasks.store.journal import append_line, read_lines
from tasks.store.location import RemotePath, lance_storage_options, store_path
from tasks.store.paths import OutputLayout, entity_data_relpath, mcp_server_relpath
from tasks.store.run_lock import RunLocked, acquire_run_lock, check_run_lock
from tasks.store.staging import stage_server
from tasks.store.storage_check import storage_problem
from tasks.store.vectors import VectorIndex
from tests.s3_server import free_port
from tests.store.test_lineage import Chain
from tests.store.test_run_lock import _dead_pid


def _layout(bucket: str, prefix: str = "run") -> OutputLayout:
    return OutputLayout.at(f"s3://{bucket}/{prefix}")


def _keys(root: RemotePath) -> list[str]:
    return sorted(p.partition(root.key + "/")[2] for p in root.fs.find(root.key))


def test_store_at_s3_url_keeps_objects_lineage_and_manifests(s3_bucket: str) -> None:
    """Artifacts, lineage records and the manifest land under the prefix and read
    back; lineage walks and hash prefixes work as on disk."""
    store = ArtifactStore(_layout(s3_bucket))
    chain = Chain(store)
    root = store.layout.root
    assert isinstance(root, RemotePath)
    keys = _keys(root)
    digest = chain.blueprint.content_hash
    assert f".agentskiller/objects/{digest[:2]}/{digest}.json" in keys
    assert f".agentskiller/lineage/{digest}.json" in keys
    assert ".agentskiller/steps/s04_blueprint_generation.json" in keys
    assert not [k for k in keys if k.endswith(".tmp")]
    assert (
        store.get(chain.blueprint.ref, type(chain.blueprint.payload)) == chain.blueprint
    )
    manifest = store.read_manifest("s04_blueprint_generation")
    assert manifest is not None and manifest.outputs == (chain.blueprint.ref,)
    assert store.match_prefix(digest[:10]) == [digest]
    [ref] = lineage.resolve(store, "tool_lists/PatientDentalCare.json")
    assert ref == chain.blueprint.ref
    [by_url] = lineage.resolve(store, f"{root}/tool_lists/PatientDentalCare.json")
    assert by_url == ref
    kinds = {n.ref.kind for n in lineage.ancestry(store, ref).children}
    assert kinds == {"entity"}


def test_output_id_object_is_created_once_by_concurrent_stores(s3_bucket: str) -> None:
    """Eight stores asking for the location's id at once all get the same one."""
    layout = _layout(s3_bucket)
    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(lambda _: ArtifactStore(layout).output_id(), range(8)))
    assert len(ids) == 1


def test_run_lock_object_admits_exactly_one_of_racing_runs(s3_bucket: str) -> None:
    """Of eight runs taking the lock at once, one gets it; the others are told who
    holds it; release deletes the object and the next run gets it."""
    layout = _layout(s3_bucket)
    start = threading.Barrier(8)

    def take(i: int) -> object:
        start.wait()
        try:
            return acquire_run_lock(layout, run_id=f"run-{i}", command=f"cmd {i}")
        except RunLocked as exc:
            return exc

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(take, range(8)))
    held = [r for r in results if not isinstance(r, RunLocked)]
    refused = [r for r in results if isinstance(r, RunLocked)]
    assert len(held) == 1 and len(refused) == 7
    winner = held[0].holder.run_id  # type: ignore[attr-defined]
    assert all(winner in str(r) for r in refused)
    with pytest.raises(RunLocked, match=winner):
        check_run_lock(layout)
    held[0].release()  # type: ignore[attr-defined]
    assert not layout.run_lock.exists()
    check_run_lock(layout)
    acquire_run_lock(layout, run_id="next", command="cmd").release()


def _plant(layout: OutputLayout, **changes: object) -> RunLockHolder:
    holder = RunLockHolder.model_validate(
        {
            "pid": _dead_pid(),
            "host": socket.gethostname(),
            "since": datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
            "run_id": "old-run",
            "command": "agentskiller run --config old.yaml",
            **changes,
        }
    )
    layout.run_lock.write_bytes(holder.model_dump_json().encode())
    return holder


def test_lock_object_of_a_dead_local_run_is_taken_over_by_one_run(
    s3_bucket: str,
) -> None:
    """A lock left by a killed run on this host is taken over (If-Match on its
    ETag), by exactly one of two racing runs."""
    layout = _layout(s3_bucket)
    _plant(layout)
    check_run_lock(layout)  # stale: not a reason to refuse
    start = threading.Barrier(2)

    def take(i: int) -> object:
        start.wait()
        try:
            return acquire_run_lock(layout, run_id=f"new-{i}", command="cmd")
        except RunLocked as exc:
            return exc

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(take, range(2)))
    assert sum(not isinstance(r, RunLocked) for r in results) == 1
    current = RunLockHolder.model_validate_json(layout.run_lock.read_bytes())
    assert current.run_id in {"new-0", "new-1"}


def test_lock_object_of_another_host_is_never_taken_over(s3_bucket: str) -> None:
    """A lock written on another host refuses, telling how to remove it."""
    layout = _layout(s3_bucket)
    _plant(layout, host="elsewhere.example", pid=1)
    with pytest.raises(RunLocked, match="elsewhere.example") as refused:
        acquire_run_lock(layout, run_id="new", command="cmd")
    assert f"delete {layout.run_lock}" in str(refused.value)
    assert b"old-run" in layout.run_lock.read_bytes()


def test_journal_at_url_keeps_every_line_from_concurrent_threads(
    s3_bucket: str,
) -> None:
    """Lines appended by 8 threads all read back complete, none torn or lost."""
    path = _layout(s3_bucket).ledger_path("run-1")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: append_line(path, f'{{"n": {i}}}'), range(40)))
    read = read_lines(path, lambda line: int(line.split(":")[1].rstrip("}")))
    assert sorted(read.entries) == list(range(40))
    assert read.skipped == 0


def test_vector_table_lives_at_the_s3_url(s3_bucket: str) -> None:
    """A LanceDB table under the prefix is written, searched and reopened."""
    from tasks.settings import environment

    layout = _layout(s3_bucket)
    options = lance_storage_options(layout.lancedb_dir, environment())
    assert options["allow_http"] == "true"

    class Unit:
        name, dim = "unit", 2

        def embed(self, texts: list[str]) -> np.ndarray:
            return np.array([[1.0, 0.0] for _ in texts], dtype=np.float32)

    index = VectorIndex(layout.lancedb_dir, "t", Unit(), storage_options=options)
    vectors = np.array([[1, 0], [0, 1]], dtype=np.float32)
    index.add(["a", "b"], ["a", "b"], vectors)
    again = VectorIndex(layout.lancedb_dir, "t", Unit(), storage_options=options)
    assert again.count() == 2
    assert again.nearest(np.array([1, 0], dtype=np.float32), k=1)[0][0] == "a"
    assert any("lancedb/t.lance" in k for k in _keys(layout.root))  # type: ignore[arg-type]


def test_stage_server_copies_only_what_serving_that_server_reads(
    s3_bucket: str, tmp_path: Path
) -> None:
    """Exports, the server's module and data come down; other servers' do not."""
    layout = _layout(s3_bucket)
    files = {
        "entities.json": "{}",
        "blueprints.json": "[]",
        mcp_server_relpath("Bank"): "TOOLS = ()\n",
        mcp_server_relpath("Clinic"): "TOOLS = ()\n",
        entity_data_relpath("Patient"): "[]",
        "database/outputs/relationships/Bank/Owns.json": "[]",
        "database/outputs/relationships/Clinic/Treats.json": "[]",
    }
    for relpath, text in files.items():
        layout.export_path(relpath).write_text(text)
    copied = stage_server(layout, "Bank", tmp_path)
    assert copied == sorted(
        [
            "blueprints.json",
            "database/outputs/entities/Patient.json",
            "database/outputs/relationships/Bank/Owns.json",
            "entities.json",
            "mcp_servers/Bank.py",
        ]
    )
    assert (tmp_path / "mcp_servers" / "Bank.py").read_text() == "TOOLS = ()\n"
    assert not (tmp_path / "mcp_servers" / "Clinic.py").exists()


def test_storage_check_names_a_missing_bucket(s3_bucket: str, s3_endpoint) -> None:
    """The message names the bucket, the location and the endpoint; nothing is
    created."""
    from tasks.settings import environment

    root = store_path("s3://no-such-bucket/prefix")
    problem = storage_problem(root, environment())
    assert "bucket 'no-such-bucket' does not exist" in problem
    assert "s3://no-such-bucket/prefix" in problem and s3_endpoint in problem
    assert not root.fs.exists("no-such-bucket")


def test_storage_check_names_an_unreachable_endpoint(s3_bucket: str) -> None:
    """An endpoint nobody listens on (given by run.storage_options) is named."""
    endpoint = f"http://127.0.0.1:{free_port()}"
    root = store_path(f"s3://{s3_bucket}/x", {"endpoint_url": endpoint})
    problem = storage_problem(root, {})
    assert f"cannot reach the storage at endpoint {endpoint}" in problem


def test_storage_check_accepts_a_writable_bucket_and_leaves_no_probe(
    s3_bucket: str,
) -> None:
    """A usable location gives no problem and keeps no probe object."""
    from tasks.settings import environment

    root = store_path(f"s3://{s3_bucket}/fresh")
    assert storage_problem(root, environment()) == ""
    assert root.fs.find(s3_bucket) == []


def test_storage_check_names_an_unwritable_local_folder(tmp_path: Path) -> None:
    """A folder that cannot be written (sysfs refuses even root) or a path below
    a file is refused, naming it."""
    problem = storage_problem(Path("/sys/agentskiller-out"), {})
    assert "output directory /sys/agentskiller-out is not writable" in problem
    blocker = tmp_path / "file"
    blocker.write_text("x")
    problem = storage_problem(blocker / "out", {})
    assert f"{blocker} is not a directory" in problem
    assert storage_problem(tmp_path / "new" / "out", {}) == ""
    assert not (tmp_path / "new").exists()

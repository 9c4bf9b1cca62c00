"""The environment worker's protocol, answered in process (the sandboxed runs are
in `test_sandboxed_serving`), and what starting it costs: the modules it
imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tasks.runtime.env_worker import WorkerReply, WorkerRequest, answer
from tests.runtime import ANA, REPO


def _ask(environment, **request) -> WorkerReply:
    return answer(environment, WorkerRequest(**request).model_dump_json())


def test_a_call_asking_for_its_state_is_answered_with_it(environment):
    """The reply to a call that asks for its state holds the result and the
    session's hash and diff after the call; a call in a private session, or
    one asking for nothing, gets the result alone."""
    reply = _ask(
        environment,
        op="call",
        session="s",
        tool="authorize_patient",
        arguments={"patient_id": ANA},
        report=("state_hash", "diff"),
    )
    assert reply.result is not None and not reply.result.is_error
    assert reply.state_hash == environment.state_hash("s")
    assert reply.diff == environment.diff("s")
    for session, report in ((None, ("state_hash",)), ("s", ())):
        plain = _ask(
            environment,
            op="call",
            session=session,
            tool="authorize_patient",
            arguments={"patient_id": ANA},
            report=report,
        )
        assert plain.result is not None
        assert (plain.state_hash, plain.diff) == (None, None)


def test_starting_the_worker_imports_no_store_or_design_schemas():
    """The worker, started once per served environment, imports what serving
    needs, not the artifact store, the configuration loader or the blueprint
    and entity schemas (the packages re-export those on first use)."""
    probe = (
        "import json, sys, tasks.runtime.env_worker; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(found.stdout))
    assert "tasks.store.paths" in loaded
    unwanted = {
        "tasks.store.artifacts",
        "tasks.store.config_loader",
        "tasks.runtime.spec",
        "schemas.blueprint",
        "schemas.entity",
        "schemas.config",
        "yaml",
    }
    assert not loaded & unwanted


def test_the_packages_still_export_their_names_on_first_use():
    """What the packages re-export is there when asked for; an unknown name is
    an AttributeError."""
    import tasks.runtime
    import tasks.store
    from tasks.runtime.spec import environment_spec
    from tasks.store.artifacts import ArtifactStore

    assert tasks.runtime.environment_spec is environment_spec
    assert tasks.store.ArtifactStore is ArtifactStore
    for package in (tasks.runtime, tasks.store):
        assert all(getattr(package, name) is not None for name in package.__all__)
        with pytest.raises(AttributeError, match="no_such_name"):
            package.no_such_name  # noqa: B018

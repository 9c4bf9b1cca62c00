"""A run killed with SIGKILL mid-call leaves a ledger of every call it finished."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

from tasks.llm.ledger import read_ledger
from tests.processes import python_child

# Runs chat completions through the real LedgerTransport; the answer to the fourth
# call never comes (the mock endpoint blocks), so the parent kills it mid-call.
CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import httpx2

    from tasks.llm.cassette import CALL_KEY_HEADER, ROLE_HEADER
    from tasks.llm.ledger import UsageLedger
    from tasks.llm.transport import LedgerTransport

    answered = 0

    def endpoint(request):
        global answered
        if answered == 3:
            print("blocked", flush=True)
            sys.stdin.readline()
        answered += 1
        usage = {"prompt_tokens": 7, "completion_tokens": 3}
        return httpx2.Response(200, json={"choices": [], "usage": usage})

    ledger = UsageLedger()
    ledger.attach(Path(sys.argv[1]))
    client = httpx2.Client(
        transport=LedgerTransport(httpx2.MockTransport(endpoint), ledger,
                                  source="replay"))
    for i in range(5):
        client.post(
            "http://endpoint.test/v1/chat/completions",
            json={"model": "m", "messages": []},
            headers={CALL_KEY_HEADER: f"s02/item-{i}", ROLE_HEADER: "textual"},
        )
    """
)


def test_sigkilled_run_leaves_a_ledger_of_its_completed_calls(tmp_path: Path) -> None:
    """Three answered calls are on disk when the process dies during the fourth."""
    path = tmp_path / "ledger" / "run.jsonl"
    with python_child(CHILD, str(path)) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "blocked"
        os.kill(child.pid, signal.SIGKILL)
    assert child.returncode == -signal.SIGKILL
    result = read_ledger(path)
    assert result.skipped == 0
    assert [r.call_key for r in result.entries] == [f"s02/item-{i}" for i in range(3)]
    assert {(r.outcome, r.prompt_tokens) for r in result.entries} == {("ok", 7)}

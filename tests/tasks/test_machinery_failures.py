"""When the pipeline's own machinery is broken, the build says so and asks nothing.

The s09 harness runs in the real sandbox with a `pytest` that cannot be imported
(shadowed on the child's path), as after `pip install` without the dependency.
"""

from __future__ import annotations

import pytest

from schemas.sandbox import SandboxRequest
from tasks import server_harness
from tasks.fanout import failure_from_exception
from tasks.llm.bound import StepLLM
from tasks.llm.prompting import PromptLibrary
from tasks.machinery import MachineryError
from tasks.runtime.harness import machinery_problem
from tasks.server_implementation import build_limits
from tasks.server_repair import build_server
from tests.tasks.test_server_implementation import (
    CFG,
    KEY,
    MODULE,
    TESTS,
    FakeLLM,
    dental_inputs,
)

BROKEN_PYTEST = 'raise ImportError("simulated: pytest is not installed")\n'


@pytest.fixture
def pytest_unimportable_in_sandbox(tmp_path, monkeypatch):
    """Every harness run sees a `pytest` module whose import fails."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pytest.py").write_text(BROKEN_PYTEST)
    shadow.chmod(0o755)
    (shadow / "pytest.py").chmod(0o644)
    real = server_harness.run_sandboxed

    def shadowed(request: SandboxRequest):
        paths = (str(shadow), *request.python_path)
        return real(request.model_copy(update={"python_path": paths}))

    monkeypatch.setattr(server_harness, "run_sandboxed", shadowed)


def test_machinery_problem_names_the_module_that_does_not_import():
    """The harness's own check names the module and the interpreter."""
    problem = machinery_problem(("json", "agentskiller_no_such_module"))
    assert problem is not None
    assert "agentskiller_no_such_module" in problem and "ModuleNotFoundError" in problem
    assert machinery_problem(("json",)) is None


@pytest.mark.slow
def test_missing_pytest_is_a_machinery_error_and_nothing_after_drafting_is_asked(
    pytest_unimportable_in_sandbox,
):
    """No gate runs and no triage or fix is asked for (only the module and the tests
    were drafted); the error names pytest and the installation, not the model or the
    generated code."""
    fake = FakeLLM(
        {f"{KEY}/module": [{"code": MODULE}], f"{KEY}/tests": [{"code": TESTS}]}
    )
    llm = StepLLM(fake, PromptLibrary(), step="s09", role="coding", model=None)
    with pytest.raises(MachineryError) as raised:
        build_server(llm, llm, dental_inputs(), build_limits(CFG))
    assert fake.keys() == [("module", 0), ("tests", 0)]
    message = str(raised.value)
    assert "cannot import pytest" in message
    assert "simulated: pytest is not installed" in message
    assert "not of the model or the code it wrote" in message
    assert "pip install -e ." in message


def test_machinery_error_is_a_recorded_failure_that_does_not_stop_the_step():
    """The fan-out records it with its own reason; it is not one of the failures
    that a plain re-run is said to fix."""
    failure = failure_from_exception(
        "s09", "DentalAppointments", MachineryError("building X", "broken harness")
    )
    assert failure.reason == "machinery_error"
    assert failure.retryable is False
    assert "broken harness" in failure.message

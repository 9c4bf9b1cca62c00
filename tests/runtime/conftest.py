"""Fixtures of the runtime tests: the DentalAppointments environment loaded from
the hand-written fixture directory, its spec, a scratch copy of the directory
for tests that alter files, and a skip unless the sandbox drops privileges."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.environment import EnvironmentSpec
from tasks.runtime.environment import Environment
from tasks.runtime.sandbox import sandbox_capabilities
from tasks.runtime.serve import load_environment
from tests.runtime import FIXTURE_DIR, SERVER, SIMULATION_TIME


@pytest.fixture
def environment() -> Environment:
    """A fresh DentalAppointments environment (its own sessions, crashes, ...)."""
    return load_environment(FIXTURE_DIR, SERVER, simulation_time=SIMULATION_TIME)


@pytest.fixture
def spec(environment: Environment) -> EnvironmentSpec:
    """The DentalAppointments spec."""
    return environment.spec


@pytest.fixture
def output_dir(tmp_path: Path) -> Path:
    """A writable copy of the fixture output directory."""
    target = tmp_path / "outputs"
    shutil.copytree(FIXTURE_DIR, target)
    return target


@pytest.fixture
def dropped_privileges() -> None:
    """Skip unless the program runs as an unprivileged uid (root with setpriv)."""
    if not sandbox_capabilities()["drop_privileges"]:
        pytest.skip("needs root with setpriv to run the program as another uid")

"""Fixtures of the runtime tests: the DentalAppointments environment loaded from
the hand-written fixture directory, its spec, and a scratch copy of the directory
for tests that alter files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from schemas.environment import EnvironmentSpec
from tasks.runtime.environment import Environment
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

"""The run finds or starts its Prefect API, and says what to do when it cannot."""

from __future__ import annotations

import socket

import httpx
import pytest

from flows import prefect_api
from flows.prefect_api import (
    DEFAULT_STARTUP_TIMEOUT_S,
    TIMEOUT_VARIABLE,
    PrefectUnavailable,
    startup_timeout_s,
)


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_configured_api(monkeypatch):
    """As on a fresh machine: no PREFECT_API_URL in the environment or profile."""
    monkeypatch.setattr(prefect_api, "configured_api_url", lambda: None)


@pytest.fixture
def started(monkeypatch):
    """The server processes `prefect_api` starts, for checking they are gone."""
    processes = []
    real_popen = prefect_api.subprocess.Popen

    def recording_popen(*args, **kwargs):
        processes.append(real_popen(*args, **kwargs))
        return processes[-1]

    monkeypatch.setattr(prefect_api.subprocess, "Popen", recording_popen)
    return processes


def test_start_up_window_is_generous_unless_the_user_sets_one():
    """180 s by default (Prefect's own 20 s fails on a busy machine); the user's
    variable wins; a non-number is named."""
    assert startup_timeout_s({}) == DEFAULT_STARTUP_TIMEOUT_S == 180
    assert startup_timeout_s({TIMEOUT_VARIABLE: "600"}) == 600
    with pytest.raises(PrefectUnavailable, match=TIMEOUT_VARIABLE):
        startup_timeout_s({TIMEOUT_VARIABLE: "soon"})


def test_unreachable_configured_api_is_one_paragraph_saying_what_to_do(monkeypatch):
    """A PREFECT_API_URL where nothing listens names the URL and the remedies."""
    url = f"http://127.0.0.1:{_unused_port()}/api"
    monkeypatch.setattr(prefect_api, "configured_api_url", lambda: url)
    with pytest.raises(PrefectUnavailable) as raised:
        with prefect_api.prefect_api({}):
            pytest.fail("the run must not start")
    message = str(raised.value)
    assert url in message and "prefect server start" in message
    assert "unset it" in message and "\n" not in message


def test_temporary_server_that_does_not_answer_in_time_says_what_to_do(
    no_configured_api, started
):
    """Past the start-up window the message names the variable to raise and how
    to run a server instead; the half-started server is stopped."""
    with pytest.raises(PrefectUnavailable) as raised:
        with prefect_api.prefect_api({TIMEOUT_VARIABLE: "0.01"}):
            pytest.fail("the run must not start")
    message = str(raised.value)
    assert "did not answer within 0.01 s" in message
    assert f"export {TIMEOUT_VARIABLE}=" in message
    assert "export PREFECT_API_URL=http://127.0.0.1:4200/api" in message
    assert [p.poll() is not None for p in started] == [True]


@pytest.mark.slow
def test_temporary_server_serves_the_run_and_is_stopped_after_it(
    no_configured_api, started
):
    """The yielded API answers; when the run ends, its server process is gone."""
    from prefect.settings import PREFECT_API_URL

    with prefect_api.prefect_api({}) as url:
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        assert PREFECT_API_URL.value() == url
    assert len(started) == 1 and started[0].poll() is not None

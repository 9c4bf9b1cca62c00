"""The report's PNG plots: one per name, deterministic bytes, no import cost."""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import zlib

from schemas.evaluation import EvaluationSummary, Metrics
from tasks.core.plots import PLOT_TITLES, render_plots
from tests import rollout_fixtures as fx
from tests.conftest import REPO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """(type, data) of every PNG chunk, checking each CRC."""
    assert png.startswith(PNG_SIGNATURE)
    chunks, at = [], len(PNG_SIGNATURE)
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        kind, data = png[at + 4 : at + 8], png[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", png[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + data) == crc
        chunks.append((kind, data))
        at += 12 + length
    return chunks


def _size(png: bytes) -> tuple[int, int]:
    kind, data = _chunks(png)[0]
    assert kind == b"IHDR"
    return struct.unpack(">II", data[:8])


def test_every_plot_is_a_valid_png_of_the_named_kinds():
    """pass^k over k, pass@1 per domain and failure reasons, each a whole PNG."""
    plots = render_plots(fx.summary())
    assert set(plots) == set(PLOT_TITLES)
    for png in plots.values():
        assert _chunks(png)[-1][0] == b"IEND"
        assert _size(png)[0] == 800


def test_the_same_summary_gives_the_same_bytes():
    """Determinism: a re-render (and a summary read back from JSON) is identical."""
    summary = fx.summary()
    again = EvaluationSummary.model_validate_json(summary.model_dump_json())
    assert render_plots(summary) == render_plots(again)


def test_the_same_summary_gives_the_same_bytes_in_another_process():
    """No state of this process (font cache, rc settings) leaks into the images."""
    code = (
        "import hashlib, json\n"
        "from tasks.core.plots import render_plots\n"
        "from tests.rollout_fixtures import summary\n"
        "print(json.dumps({k: hashlib.sha256(v).hexdigest() "
        "for k, v in render_plots(summary()).items()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    here = {
        k: hashlib.sha256(v).hexdigest() for k, v in render_plots(fx.summary()).items()
    }
    assert json.loads(done.stdout) == here


def test_plots_carry_no_software_or_time_metadata():
    """No tEXt chunk names the matplotlib version, and no tIME chunk is written."""
    for png in render_plots(fx.summary()).values():
        kinds = {kind for kind, _ in _chunks(png)}
        assert b"tIME" not in kinds
        texts = b"".join(data for kind, data in _chunks(png) if kind == b"tEXt")
        assert b"Software" not in texts
        assert b"matplotlib" not in png


def test_different_data_gives_a_different_plot():
    """The images depend on the numbers (a guard against drawing nothing)."""
    summary = fx.summary()
    better = summary.model_copy(update={"failure_reasons": {"state": 7}})
    before, after = render_plots(summary), render_plots(better)
    assert before["failure_reasons"] != after["failure_reasons"]
    assert before["pass_hat_k"] == after["pass_hat_k"]


def test_plots_of_an_empty_summary_are_drawn_with_a_note():
    """No domain, no k and no failure still give three images."""
    nothing = Metrics(tasks=0, rollouts=0, pass_at_1=0.0, pass_hat_k={}, pass_at_k={})
    plots = render_plots(
        EvaluationSummary(overall=nothing, by_domain={}, by_evaluator={})
    )
    assert set(plots) == set(PLOT_TITLES)
    assert all(png.startswith(PNG_SIGNATURE) for png in plots.values())


def test_importing_the_plots_module_does_not_import_matplotlib():
    """matplotlib is loaded when a plot is drawn, not at import."""
    code = "import sys, tasks.core.plots; print('matplotlib' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "False"

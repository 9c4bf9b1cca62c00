"""The viewer page in a real headless chromium: its script renders the rollout
list and the open rollout, the URL fragment filters the list, and model text stays
text. Skipped only when chromium is not installed."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest

from tasks.core.viewer import render_viewer
from tests import rollout_fixtures as fx
from tests.browser import chromium, dump_dom, page_url, screenshot
from tests.core.test_plots import _size
from tests.core.test_viewer import HOSTILE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        chromium() is None,
        reason="chromium is not installed (Debian: apt-get install chromium)",
    ),
]


class _Elements(HTMLParser):
    """Every start tag of a document with its attributes, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(dom: str) -> _Elements:
    parser = _Elements()
    parser.feed(dom)
    return parser


def _listed(dom: str) -> dict[str, str]:
    """Rollout key -> outcome of each entry in the rendered list."""
    return {
        attrs["data-key"]: attrs["data-outcome"]
        for tag, attrs in _parse(dom).tags
        if tag == "li" and "rollout" in attrs.get("class", "").split()
    }


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """The fixture run's viewer, with hostile text in the first user message."""
    [first, *rest] = fx.rollouts()
    hostile = first.model_copy(
        update={"messages": (fx.user(HOSTILE), *first.messages[1:])}
    )
    path = tmp_path_factory.mktemp("viewer") / "viewer.html"
    path.write_text(
        render_viewer([hostile, *rest], fx.results(), fx.golden_tasks()),
        encoding="utf-8",
    )
    return path


def test_the_script_renders_every_rollout_and_opens_the_first(page: Path):
    """Without a fragment all five rollouts are listed and the first is open:
    its verdicts, state diff tables and conversation are drawn."""
    dom = dump_dom(page_url(page))
    assert _listed(dom) == {
        "q-cancel#0": "passed",
        "q-cancel#1": "failed",
        "q-extra#0": "unevaluated",
        "q-book#0": "failed",
        "q-book#1": "failed",
    }
    tags = _parse(dom).tags
    selected = [a for t, a in tags if t == "li" and "selected" in a.get("class", "")]
    assert [a["data-key"] for a in selected] == ["q-cancel#0"]
    assert {a["data-evaluator"] for t, a in tags if "data-evaluator" in a} == {
        "action",
        "nl_assertions",
        "state",
    }
    assert {a["data-table"] for t, a in tags if t == "table"} == {
        "appointments",
        "slots",
    }
    assert "Showing 5 of 5 rollouts" in dom


def test_an_outcome_in_the_fragment_lists_only_those_rollouts(page: Path):
    """`#outcome=failed` keeps the three failed rollouts and nothing else."""
    dom = dump_dom(page_url(page, "outcome=failed"))
    assert _listed(dom) == {
        "q-cancel#1": "failed",
        "q-book#0": "failed",
        "q-book#1": "failed",
    }
    assert "Showing 3 of 5 rollouts" in dom


def test_failing_evaluator_environment_and_domain_filters_combine(page: Path):
    """A failing evaluator with an environment narrows to one rollout; a member
    domain finds the fused environment's rollouts."""
    state_here = dump_dom(page_url(page, f"failing=state&env={fx.CLINIC}"))
    assert list(_listed(state_here)) == ["q-cancel#1"]
    billing = dump_dom(page_url(page, "domain=TreatmentBilling"))
    assert list(_listed(billing)) == ["q-book#0", "q-book#1"]


def test_a_query_string_filters_too(page: Path):
    """`?outcome=unevaluated` works like the fragment (for links that drop `#`)."""
    dom = dump_dom(f"{page_url(page)}?outcome=unevaluated")
    assert _listed(dom) == {"q-extra#0": "unevaluated"}
    assert "Not evaluated." in dom


def test_the_opened_rollout_marks_missing_and_unexpected_changes(page: Path):
    """`#rollout=q-cancel%231` opens the wrong cancellation: its diff rows are
    classed missing and unexpected."""
    dom = dump_dom(page_url(page, f"rollout={quote('q-cancel#1')}"))
    rows = [a["class"] for t, a in _parse(dom).tags if t == "tr" and a.get("class")]
    assert rows == ["missing", "unexpected", "missing", "unexpected"]


def test_model_text_is_shown_as_text_not_markup(page: Path):
    """The hostile user message is a text node: no element came from it, and the
    document keeps its two script elements."""
    dom = dump_dom(page_url(page))
    parsed = _parse(dom)
    assert HOSTILE in "".join(parsed.text)
    assert [t for t, _ in parsed.tags].count("script") == 2
    assert not any(t == "img" for t, _ in parsed.tags)


def test_a_screenshot_is_taken_at_the_window_size(page: Path, tmp_path: Path):
    """The screenshot helper the README image comes from writes a 1400x1000 PNG."""
    png = screenshot(page_url(page), tmp_path / "shot.png")
    assert _size(png.read_bytes()) == (1400, 1000)


def test_choosing_a_filter_rewrites_the_fragment_and_the_list(page: Path, tmp_path):
    """A `change` on the outcome select (dispatched by a script added to a copy of
    the page, as a click would) moves the filter into the fragment, drops a
    `?query`, and redraws the list."""
    choose = (
        "<script>var s = document.querySelector('select[name=outcome]');"
        "s.value = 'passed'; s.dispatchEvent(new Event('change', {bubbles: true}));"
        "document.body.setAttribute('data-url', location.search + location.hash);"
        "</script></body>"
    )
    copy = tmp_path / "viewer.html"
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", choose))
    dom = dump_dom(f"{page_url(copy)}?outcome=failed")
    assert _listed(dom) == {"q-cancel#0": "passed"}
    [body] = [attrs for tag, attrs in _parse(dom).tags if tag == "body"]
    assert body["data-url"] == "#outcome=passed"

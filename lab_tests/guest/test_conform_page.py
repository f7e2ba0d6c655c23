"""The conformance report's page as a browser shows it: Debian's headless Chromium (installed
by scripts/setup-host.sh) renders the synthetic report of lab_tests/conform/sample.py, and
the test reads the counts, the result line and every verdict back from the rendered DOM.
No Docker; in the guest tier all the same, where the host's browser is set up and which runs
last: Chromium's renders take both cores for seconds, and the Docker-free tiers beside the lab's
hold timing-sensitive tests (lab_tests/loopback/test_hostile_peers.py).

The screenshot is kept as artifacts/conformance-page/screenshot.png, the page beside it."""

from __future__ import annotations

import os
import re
import struct
import time

import pytest

from lab_tests.conform import report
from lab_tests.conform.sample import sample_report
from lab_tests.harness import ARTIFACTS

OUT = ARTIFACTS / "conformance-page"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rendered():
    """(report, rendered DOM) of the sample report, rendered once."""
    sample = sample_report()
    report.write(sample, OUT)
    started = time.monotonic()
    try:
        dom = report.render(OUT / "index.html", OUT / "screenshot.png")
    except report.ChromiumMissing as exc:
        if os.environ.get("SOCKETLAB_REQUIRE_LAB") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    print(f"\nchromium: the page rendered twice in {time.monotonic() - started:.1f} s")
    return sample, dom


def test_summary_as_rendered(rendered):
    sample, dom = rendered
    expected = {("app-client", p, v): 0 for p in sample["positions"] for v in report.VERDICTS}
    for case in sample["cases"]:
        expected["app-client", case["position"], case["verdict"]] += 1
    assert report.summary_from_dom(dom) == expected


def test_result_line_as_rendered(rendered):
    _, dom = rendered
    assert re.search(r'<p id="result"[^>]*>FAIL: 2 cases failed</p>', dom)


def test_every_verdict_as_rendered(rendered):
    sample, dom = rendered
    shown = dict(re.findall(r'<section id="case-([^"]+)" class="case verdict-[^"]+">.*?'
                            r'<span class="badge verdict-[^"]+">([A-Z-]+)</span>', dom, re.S))
    assert shown == {f"{c['id']}-{c['position']}": c["verdict"] for c in sample["cases"]}
    assert "<script" not in dom.lower()  # the hostile output stayed text in the browser too
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in dom


def test_screenshot(rendered):
    png = (OUT / "screenshot.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE and png[12:16] == b"IHDR"
    width, height = struct.unpack("!II", png[16:24])
    assert (width, height) == report.WINDOW
    assert len(png) > 10_000

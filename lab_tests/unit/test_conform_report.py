"""The conformance report's files, read back without a browser (lab_tests/conform/report.py):
report.json, junit.xml, index.html and its ladder diagrams, for the synthetic report of
lab_tests/conform/sample.py (every verdict, hostile output, 0 and 500 packets)."""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import xml.dom.minidom
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from lab_tests import topology
from lab_tests.conform import report, sample
from lab_tests.conform.sample import EXCHANGE, HOSTILE_STDERR, HOSTILE_STDOUT, sample_report


@pytest.fixture
def written(tmp_path):
    """The sample report written; (report, folder)."""
    sample = sample_report()
    report.write(sample, tmp_path)
    return sample, tmp_path


def page(folder) -> str:
    return (folder / "index.html").read_bytes().decode("utf-8")  # strict: the page is valid UTF-8


def case_of(sample: dict, case_id: str, position: str) -> dict:
    return next(c for c in sample["cases"] if c["id"] == case_id and c["position"] == position)


def test_report_json_round_trips(written):
    sample, folder = written
    raw = (folder / "report.json").read_bytes()
    assert json.loads(raw.decode("utf-8")) == sample  # the lone surrogate comes back too
    assert raw.decode("utf-8").splitlines()[1] == ' "role": "app-client",'  # indent 1
    assert "0x5700 ≠ 0x0057" in raw.decode()  # ensure_ascii=False
    assert '\\u0000\\u001b[31m red \\udcff' in raw.decode()  # the surrogate as its JSON escape
    assert case_of(json.loads(raw), "3.2.1", "little-endian")["program"]["stderr"] == HOSTILE_STDERR


def test_junit_counts_and_properties(written):
    sample, folder = written
    raw = (folder / "junit.xml").read_bytes()
    xml.dom.minidom.parseString(raw)  # expat: strict XML 1.0
    root = ET.fromstring(raw)
    suite = root.find("testsuite")
    assert suite.get("name") == "socketlab conformance: app-client"
    verdicts = Counter(c["verdict"] for c in sample["cases"])
    assert verdicts["FAIL"] == 2 and verdicts["UNIMPLEMENTED"] == 2
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("12", "2", "2")
    testcases = suite.findall("testcase")
    assert len(testcases) == len(sample["cases"])
    for testcase in testcases:
        case_id, title = testcase.get("name").split(" ", 1)
        position = testcase.get("classname").removeprefix("app-client.")
        case = case_of(sample, case_id, position)
        assert title == case["title"]
        properties = {p.get("name"): p.get("value") for p in testcase.find("properties")}
        assert properties["verdict"] == case["verdict"]
        assert (testcase.find("failure") is not None) == (case["verdict"] == "FAIL")
        assert (testcase.find("skipped") is not None) == (case["verdict"] == "UNIMPLEMENTED")
    failed = {tc.get("name"): tc.find("failure") for tc in testcases if tc.find("failure") is not None}
    assert set(failed) == {"3.2.1 the response header is decoded in network byte order"}
    hostile = next(tc for tc in testcases if tc.get("classname") == "app-client.little-endian"
                   and tc.get("name").startswith("3.2.1"))
    assert hostile.find("failure").get("message") == f"the client printed {HOSTILE_STDOUT}"
    assert hostile.find("system-out").text == HOSTILE_STDOUT
    assert hostile.find("system-err").text == "\\x00\\x1b[31m red \\udcff"  # forbidden characters shown


def test_page_is_static_and_offline(written):
    sample, folder = written
    text = page(folder)
    assert "<script" not in text.lower()
    assert not re.search(r"https?:|//[a-z]|@import|url\(", text, re.I)
    links = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', text, re.I)
    pcaps = {c["pcap"] for c in sample["cases"] if c["pcap"]}
    assert {link for link in links if not link.startswith("#")} == pcaps
    anchors = {link[1:] for link in links if link.startswith("#")}
    assert anchors == {f"case-{c['id']}-{c['position']}" for c in sample["cases"]}
    assert "<style>" in text and "<link" not in text


def test_hostile_output_is_text(written):
    _, folder = written
    text = page(folder)
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "\\x00\\x1b[31m red \\udcff" in text
    assert "\x00" not in text and "\x1b" not in text
    assert "|&lt;script&gt;alert(2)|" in text  # the payload's ASCII column
    assert "alert(1)</script>" not in text and "alert(2)</script>" not in text


def test_summary_table_and_result(written):
    sample, folder = written
    text = page(folder)
    expected = {("app-client", p, v): 0 for p in sample["positions"] for v in report.VERDICTS}
    for case in sample["cases"]:
        expected["app-client", case["position"], case["verdict"]] += 1
    assert report.summary_from_dom(text) == expected
    assert expected["app-client", "little-endian", "NON-STRICT"] == 2
    assert '<p id="result" class="fail">FAIL: 2 cases failed</p>' in text
    header = re.search(r'<table id="summary">.*?</tr>', text, re.S).group()
    assert re.findall(r"<th>([A-Z-]+)</th>", header) == list(report.VERDICTS)


def test_result_without_failures(tmp_path):
    sample = sample_report()
    for case in sample["cases"]:
        case["verdict"] = "NON-STRICT" if case["verdict"] == "FAIL" else case["verdict"]
    report.write(sample, tmp_path)
    assert '<p id="result" class="pass">PASS: no case failed</p>' in page(tmp_path)
    assert ET.parse(tmp_path / "junit.xml").getroot().find("testsuite").get("failures") == "0"


def test_unknown_verdict_is_refused(tmp_path):
    sample = sample_report()
    sample["cases"][0]["verdict"] = "OK"
    with pytest.raises(ValueError, match="verdict 'OK' is not one of"):
        report.write(sample, tmp_path)


def test_cases_by_topic_in_id_order(written):
    _, folder = written
    text = page(folder)
    sections = re.findall(r'<section id="case-([^"]+)" class="case verdict-([a-z-]+)">', text)
    assert sections == [
        ("1.1.1-little-endian", "pass"), ("1.1.1-big-endian", "pass"),
        ("1.2.1-little-endian", "non-strict"), ("1.2.1-big-endian", "pass"),
        ("3.2.1-little-endian", "fail"), ("3.2.1-big-endian", "fail"),
        ("3.4.1-little-endian", "unimplemented"), ("3.4.1-big-endian", "unimplemented"),
        ("3.9.1-little-endian", "non-strict"), ("3.9.1-big-endian", "informational"),
        ("10.1.1-little-endian", "informational"), ("10.1.1-big-endian", "pass"),
    ]
    assert re.findall(r"<h2>([^<]+)</h2>", text) == [
        "1. Connecting and closing", "3. The application client and server", "10. Robustness beyond the guide"]


def test_case_section_shows_the_program(written):
    _, folder = written
    text = page(folder)
    stopped = re.search(r'<section id="case-10.1.1-little-endian".*?</section>', text, re.S).group()
    assert '<p class="status">stopped at the deadline</p>' in stopped
    assert f"<code>python3 app-client.py {sample.SERVER} {sample.PORT} search ring</code>" in stopped
    assert '<a href="pcaps/10.1.1-little-endian.pcap">' in stopped
    assert "… 484 more data packets (see the pcap)" in stopped  # 500 data packets, 16 dumped
    exited = re.search(r'<section id="case-3.2.1-little-endian".*?</section>', text, re.S).group()
    assert '<p class="status">exit status 2</p>' in exited
    none = re.search(r'<section id="case-3.4.1-big-endian".*?</section>', text, re.S).group()
    assert "no packets captured" in none and "<svg" not in none and "<a " not in none


def test_output_is_cut_at_64_kib(tmp_path):
    sample = sample_report()
    sample["cases"][0]["program"]["stdout"] = "é" * 100_000  # 200 000 bytes
    report.write(sample, tmp_path)
    text = page(tmp_path)
    shown = re.search(r"<pre>(é+)</pre>", text).group(1)
    assert len(shown.encode()) == 64 * 1024
    assert f"… {200_000 - 64 * 1024} more bytes of stdout not shown" in text
    junit = ET.parse(tmp_path / "junit.xml").getroot()
    assert max(len((e.text or "").encode()) for e in junit.iter("system-out")) == 64 * 1024


def arrows(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall("g")


def test_ladder_is_bounded():
    case = case_of(sample_report(), "10.1.1", "little-endian")
    assert len(case["packets"]) == 500
    svg = report.svg_ladder(case)
    drawn = arrows(svg)
    assert len(drawn) == 120 and all(g.get("class").startswith("arrow") for g in drawn)
    more = [t.text for t in ET.fromstring(svg).findall("text") if t.get("class") == "more"]
    assert more == ["… 380 more packets (see the pcap)"]
    case["packets_omitted"] = 20  # the runner kept only 500 of them
    assert "… 400 more packets (see the pcap)" in report.svg_ladder(case)


def test_ladder_without_packets():
    case = case_of(sample_report(), "3.4.1", "little-endian")
    assert case["packets"] == []
    assert report.svg_ladder(case) == '<p class="no-packets">no packets captured</p>'


def test_ladder_labels_and_directions():
    case = case_of(sample_report(), "1.1.1", "little-endian")
    svg = report.svg_ladder(case)
    root = ET.fromstring(svg)
    lanes = {t.text for t in root.findall("text") if t.get("class") == "lane"}
    assert lanes == {f"client {topology.CLIENT_V4}", "router", f"server {topology.SERVER_V4}"}
    x = {"client": report.LANES["client"], "router": report.LANES["router"], "server": report.LANES["server"]}
    assert x["client"] < x["router"] < x["server"]
    drawn = []
    last_y = -1.0
    for g in arrows(svg):
        line = g.find("line")
        x1, y1, x2, y2 = (float(line.get(k)) for k in ("x1", "y1", "x2", "y2"))
        assert y2 > y1 > last_y  # down with time
        last_y = y1
        source = next(lane for lane, lx in x.items() if lx == x1)
        target = next(lane for lane, lx in x.items() if lx == x2)
        assert (g.get("data-from"), g.get("data-to")) == (source, target)
        label = next(t.text for t in g.findall("text") if t.get("class") == "label")
        drawn.append((label, source, target))
    assert drawn == [(label, source, target) for _, label, source, target in EXCHANGE]
    times = [t.text for g in arrows(svg) for t in g.findall("text") if t.get("class") == "time"]
    assert times[:2] == ["0.000 ms", "0.210 ms"] and times[-1] == "50.3 ms"
    pure_ack = [g.get("class") for g in arrows(svg)]
    assert pure_ack[2] == "arrow ack" and pure_ack[3] == "arrow data"


@pytest.mark.parametrize(("flags", "size", "label"), [
    ("S", 0, "SYN"), ("S.", 0, "SYN-ACK"), (".", 0, "ACK"), ("P.", 87, "data 87 B"), (".", 1448, "data 1448 B"),
    ("F.", 0, "FIN"), ("FP.", 5, "data 5 B, FIN"), ("R", 0, "RST"), ("R.", 0, "RST"),
])
def test_labels(flags, size, label):
    assert report._label({"flags": flags, "len": size}) == label


CLIENT, SERVER, ROUTER = topology.CLIENT_V4, topology.SERVER_V4, sample.ROUTER
#: Two more clients on clientnet: the client's neighbours.
OTHER, THIRD = (str(ipaddress.ip_address(CLIENT) + k) for k in (1, 2))


@pytest.mark.parametrize(("src", "sport", "dst", "dport", "ends"), [
    (CLIENT, 40000, SERVER, 65438, ("client", "server")),  # by address
    (SERVER, 65438, CLIENT, 40000, ("server", "client")),
    (ROUTER, 65432, CLIENT, 40000, ("server", "client")),  # the router's address: by port
    (OTHER, 41000, ROUTER, 65441, ("client", "server")),  # another client
    (OTHER, 65436, THIRD, 65441, ("server", "client")),  # both well known: the lower
])
def test_sides(src, sport, dst, dport, ends):
    packet = {"src": src, "sport": sport, "dst": dst, "dport": dport, "flags": "S", "len": 0}
    assert report._ends(packet, {"client": CLIENT, "server": SERVER}) == ends


def test_hostile_wire_text_in_the_ladder():
    case = copy.deepcopy(case_of(sample_report(), "1.1.1", "little-endian"))
    case["hosts"]["client"] = "<b>\x00"
    svg = report.svg_ladder(case)
    ET.fromstring(svg)  # still well-formed
    assert "client &lt;b&gt;\\x00" in svg and "<b>" not in svg


def test_hexdump():
    assert report.hexdump(b"\x00\x57{\"a\": 1}\xff") == (
        "0000  00 57 7b 22 61 22 3a 20 31 7d ff" + " " * 17 + "|.W{\"a\": 1}.|")
    assert report.hexdump(bytes(range(32))).splitlines()[1].startswith("0010  10 11 12")

"""The fuzzer's findings as regressions, and the edge contract as hypothesis properties.

Every file in lab_tests/fuzz/crashers (inputs that crash(ed) or stall(ed) socketlab) and in
lab_tests/fuzz/corpus (the seed corpus) goes through lab_tests/fuzz/contract.check, the same
function the atheris harness runs; docs/fuzzing.md says how to add one.
"""

from __future__ import annotations

import json
import random
import struct
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lab_tests.fuzz import contract, frames
from socketlab import app, arrays, demo, protocol
from socketlab.protocol import LocalProtocolError, RemoteProtocolError, encode_message


FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
CRASHERS = sorted((FUZZ / "crashers").iterdir())
CORPUS = sorted((FUZZ / "corpus").iterdir())

#: Crashers that still fail, with the reason: strict xfail, so a fix shows up as XPASS and the
#: entry must then be removed (the file stays, as a regression).
OPEN: dict[str, str] = {}


def _replay_params(paths: list[Path]) -> list:
    return [pytest.param(path, id=path.name,
                         marks=[pytest.mark.xfail(reason=OPEN[path.name], raises=contract.Stall, strict=True)]
                         if path.name in OPEN else [])
            for path in paths]


def test_every_open_entry_names_a_crasher_file():
    assert set(OPEN) <= {path.name for path in CRASHERS}


@pytest.mark.parametrize("path", _replay_params(CRASHERS + CORPUS))
def test_replay(path):
    contract.check(path.read_bytes())


@pytest.mark.parametrize("path", [path for path in CRASHERS if path.name not in OPEN], ids=lambda p: p.name)
def test_replay_byte_by_byte(path):
    data = path.read_bytes()
    contract.check(data, [1] * len(data))


def test_the_seed_corpus_is_the_one_frames_builds():
    assert {path.name: path.read_bytes() for path in CORPUS} == frames.seed_frames()


def test_the_seed_corpus_reaches_every_kind_of_answer():
    stats = contract.Stats()
    for path in CORPUS:
        contract.check(path.read_bytes(), stats=stats)
    assert stats.refused == 0 and all(stats.answers[kind] for kind in ("text", "array", "binary"))


# --- negative controls: the check catches the bugs it is there for -------------------------

SEARCH = app.make_request("search", "ring")
ARRAY = app.make_request("stats", "1,2", dtype="int16")


def test_check_lets_an_unexpected_exception_through():
    def buggy(message, **kwargs):
        return {}[message.header["content-type"]]  # KeyError: the kind of bug the fuzzer hunts

    with pytest.raises(KeyError):
        contract.check(SEARCH, respond=buggy)


def test_check_refuses_an_answer_that_does_not_decode():
    with pytest.raises(contract.ContractViolation, match="not exactly one valid message"):
        contract.check(SEARCH, respond=lambda message, **kwargs: app.respond(message)[:-1])
    with pytest.raises(contract.ContractViolation, match="not exactly one valid message"):
        contract.check(SEARCH, respond=lambda message, **kwargs: app.respond(message) * 2)


def test_check_refuses_an_answer_the_client_rejects():
    def no_result(message, **kwargs):
        return encode_message(b"{}", content_type="text/json", content_encoding="utf-8", byteorder="big")

    with pytest.raises(contract.ContractViolation, match="refuses our own answer"):
        contract.check(SEARCH, respond=no_result)


def test_check_covers_the_naive_array_decoder():
    def naive_breaks(message, *, array_decoder=arrays.decode_array):
        if array_decoder is arrays.decode_array_naive:
            raise OverflowError("naive")
        return app.respond(message, array_decoder=array_decoder)

    with pytest.raises(OverflowError):
        contract.check(ARRAY, respond=naive_breaks)


def test_check_lets_a_client_side_exception_through():
    with pytest.raises(ZeroDivisionError):
        contract.check(SEARCH, describe=lambda message: 1 / 0)


def test_check_flags_a_stall():
    with pytest.raises(contract.Stall):
        contract.check(SEARCH, stall_seconds=-1.0)


def test_the_mutator_keeps_inputs_structured():
    """Most mutants of the seeds still decode to a message that reaches the app (random bytes
    almost never do): the fuzzer explores the application, not the length prefix."""
    rng = random.Random(7)
    seeds = [path.read_bytes() for path in CORPUS]
    stats = contract.Stats()
    for _ in range(600):
        mutant = frames.mutate(rng.choice(seeds), 4096, rng.randrange(2**32))
        assert len(mutant) <= 4096
        contract.check(mutant, stats=stats)
    answered = sum(stats.answers.values()) - stats.answers["error"]
    assert answered > 200, stats.line()
    assert all(stats.answers.values()), stats.line()


# --- hypothesis properties of the contract ------------------------------------------------

any_text = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates included
tokens = st.sampled_from([t for t in frames.NUMBER_TOKENS if len(t) < 200]).map(frames.Raw)
deep = st.tuples(st.integers(30, 3000), st.sampled_from(["[]", "{}"])).map(
    lambda nd: frames.Raw("[" * nd[0] + "]" * nd[0]) if nd[1] == "[]"
    else frames.Raw('{"a":' * nd[0] + "1" + "}" * nd[0]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**80), 10**80) | st.floats() | any_text | tokens | deep,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "byteorder": st.sampled_from(frames.BYTEORDERS) | json_values,
        "content-type": st.sampled_from(frames.CONTENT_TYPES) | json_values,
        "content-encoding": st.sampled_from(frames.CONTENT_ENCODINGS) | json_values,
        "content-length": json_values,
    },
).flatmap(lambda header: st.dictionaries(any_text, json_values, max_size=3).map(lambda extra: {**extra, **header}))
contents = st.one_of(
    st.binary(max_size=64),
    st.fixed_dictionaries({"action": st.sampled_from(frames.ACTIONS) | json_values,
                           "value": st.sampled_from(frames.SEARCH_VALUES) | json_values}),
    json_values,
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def wires(draw):
    """One or two frames with arbitrary JSON headers and contents, lengths usually right."""
    out = b""
    for _ in range(draw(st.integers(1, 2))):
        header, content = draw(headers), draw(contents)
        if isinstance(content, bytes):
            frame = frames.Frame(dict(header), content)
        else:
            frame = frames.Frame(dict(header), b"", json_content=content)
        frame.fix_length = "content-length" not in header or draw(st.booleans())
        frame.ascii_only = draw(st.booleans())
        out += frame.to_bytes()
    return out + draw(st.binary(max_size=4))


@st.composite
def chunkings(draw, data: bytes):
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=8))) | {0, len(data)})
    return [b - a for a, b in zip(cuts, cuts[1:]) if b > a]


@SETTINGS
@given(st.data())
def test_structured_frames_keep_the_contract(data):
    wire = data.draw(wires())
    contract.check(wire, data.draw(chunkings(wire)))


@SETTINGS
@given(st.data())
def test_arbitrary_bytes_keep_the_contract(data):
    wire = data.draw(st.binary(max_size=300))
    contract.check(wire, data.draw(chunkings(wire)))


@SETTINGS
@given(
    dtype=st.sampled_from(sorted(arrays.DTYPES)),
    byteorder=st.sampled_from(["little", "big", "network"]),
    content=st.binary(max_size=80),
)
def test_any_packed_array_keeps_the_contract_and_comes_back_in_order(dtype, byteorder, content):
    wire = encode_message(content, content_type=arrays.array_content_type(dtype),
                          content_encoding="binary", byteorder=byteorder)
    contract.check(wire)
    request = contract.decode_one(wire, "the request")
    try:
        values = arrays.decode_array(request)
    except RemoteProtocolError:
        return  # not a whole number of items: refused, checked above
    reply = contract.decode_one(app.respond(request), "the answer")
    assert reply.byteorder == byteorder and reply.header["x-stats"]["count"] == len(values)
    assert struct.pack(f"={len(values)}{arrays.DTYPES[dtype]}", *values) == \
        struct.pack(f"={len(values)}{arrays.DTYPES[dtype]}", *arrays.decode_array(reply))


@SETTINGS
@given(value=st.text(max_size=40), action=st.text(max_size=10), encoding=st.sampled_from(
    ["utf-8", "utf-16", "utf-16-le", "utf-32-be", "utf8", "UTF-16BE"]))
def test_a_json_request_in_any_accepted_encoding_is_answered(value, action, encoding):
    wire = encode_message(json.dumps({"action": action, "value": value}).encode(
        "utf-16-be" if encoding.lower() == "utf-16be" else encoding), content_type="text/json",
        content_encoding=encoding, byteorder=sys.byteorder)
    contract.check(wire)
    result = app.describe_response(contract.decode_one(
        app.respond(contract.decode_one(wire, "the request")), "the answer"))
    expected = app.SEARCH.get(value) or app.NO_MATCH.format(value) if action == "search" \
        else app.INVALID_ACTION.format(action)
    assert result == expected


# --- the client's side: replies at full size (issue 19) --------------------------------------


def full_size_json_reply(result) -> bytes:
    """A text/json reply ``{"result": [result, padding]}`` as close to the limit as it goes."""
    def body(pad: int) -> bytes:
        return json.dumps({"result": [result, "\x1b\n\u2028" * pad]}, ensure_ascii=False).encode()
    room = protocol.MAX_JSON_CONTENT_LENGTH - len(body(0))
    pad = max(0, room // (len(body(1)) - len(body(0))))
    return encode_message(body(pad), content_type="text/json", content_encoding="utf-8",
                          byteorder="big")


def shown_by_the_client(reply: bytes) -> tuple[list[str], str]:
    """Every line the app client and the demo would print for ``reply`` (the contract's
    decode), and the app client's --json output."""
    message = contract.decode_one(reply, "the reply")
    result = app.describe_response(message)
    return [*app.result_lines(message), demo._shown(result)], json.dumps(result)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(result=json_values)
def test_a_full_size_json_reply_is_shown_in_printable_lines(result):
    try:
        reply = full_size_json_reply(result)
    except (LocalProtocolError, ValueError, RecursionError):
        return  # not JSON we can send (a lone surrogate, NaN, over the depth limit)
    contract.check(reply)  # within the CPU budget, and every printed line printable
    try:
        lines, json_output = shown_by_the_client(reply)
    except RemoteProtocolError:
        return  # refused by the client's own limits (a 65-digit number): one line, checked above
    assert all(line.isprintable() for line in lines), [line[:100] for line in lines]
    assert json_output.isascii() and json_output.isprintable()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dtype=st.sampled_from(sorted(arrays.DTYPES)), byteorder=st.sampled_from(["little", "big"]),
       seed=st.binary(min_size=8, max_size=64))
def test_a_full_size_array_reply_is_shown_within_the_cpu_budget(dtype, byteorder, seed):
    """What a person reads of a 4 MiB array (a million values) is its first values, a few
    lines, within the fuzz contract's CPU budget (the --json output has every value)."""
    size = struct.calcsize(arrays.DTYPES[dtype])
    content = (seed * (protocol.MAX_CONTENT_LENGTH // len(seed) + 1))[:protocol.MAX_CONTENT_LENGTH]
    reply = encode_message(content[:len(content) // size * size],
                           content_type=arrays.array_content_type(dtype),
                           content_encoding="binary", byteorder=byteorder)
    started = time.process_time()
    message = contract.decode_one(reply, "the reply")
    lines = [*app.result_lines(message), demo._shown(app.describe_response(message))]
    assert time.process_time() - started <= contract.cpu_budget(len(reply))
    assert all(line.isprintable() and len(line) < 2048 for line in lines), [l[:100] for l in lines]


def test_negative_control_a_result_printed_as_it_came_is_not_one_line():
    message = contract.decode_one(encode_message(
        json.dumps({"result": "ok\n\x1b[31mforged"}).encode(), content_type="text/json",
        content_encoding="utf-8", byteorder="big"), "the reply")
    assert not f"Got result: {app.describe_response(message)}".isprintable()
    assert app.result_lines(message) == ["Got result: ok\\n\\x1b[31mforged"]

"""The command line as an attacker types it (issue 19): a property test over argv.

For any argv, ``socketlab``'s parsing either gives values within their ranges, or exits 2 with
one printable line on stderr (or 0 for --help and --version). Never a traceback, never a value
that ends the program later (a timeout epoll cannot take, a buffer size setsockopt refuses).
Parsing resolves no name and opens no socket, so this tier stays hermetic.
"""

from __future__ import annotations

import contextlib
import io
import math

from hypothesis import given, settings, strategies as st

from socketlab import cli

PARSER = cli.build_parser()
SUBCOMMANDS = next(a for a in PARSER._actions if a.dest == "command").choices
OPTIONS = sorted({option for sub in SUBCOMMANDS.values() for action in sub._actions
                  for option in action.option_strings})
EDGES = ["0", "-1", "1", "2", "65535", "65536", "0.5", "1e10", "1e308", "-0", "nan", "inf", "-inf",
         "0x10", "1_000", " 1", "3000000", "31536000", "31536001", str(2**31), str(2**40),
         str(2**64), "9" * 400, "", "\udcff", "é", "a" * 300, "a..b", ".x", "[::1]", "::1",
         "127.0.0.1", "search", "stats", "double", "1,2,3", "1,two", "70000", "int16", "float32",
         "big", "native", "naive", "--", "-"]
#: Positionals each command takes, right ones, so most argv get as far as the options' ranges.
POSITIONALS = {
    "echo-server": ["127.0.0.1", "0"], "multiconn-server": ["::1", "0"], "app-server": ["::", "0"],
    "fill-server": ["127.0.0.1", "0"], "echo-client": ["127.0.0.1", "1", "hi"],
    "multiconn-client": ["127.0.0.1", "1", "2"], "app-client": ["127.0.0.1", "1", "search", "x"],
    "fill-client": ["127.0.0.1", "1"], "probe": ["::1", "1"], "demo": ["127.0.0.1"],
    "addrinfo": ["127.0.0.1", "80"], "sockopts": ["::1"], "backlog": ["127.0.0.1"],
    "half-open-server": ["127.0.0.1", "0"],
}
VALUE = st.one_of(*[st.sampled_from(EDGES)] * 4, st.text(max_size=12))  # mostly the edges


def argv_for(command: str):
    """argv for ``command``: right positionals (mostly), then its own options with edge values,
    now and then another command's option or a stray value."""
    own = sorted(o for action in SUBCOMMANDS[command]._actions for o in action.option_strings)
    option = st.one_of(*[st.sampled_from(own)] * 4, st.sampled_from(OPTIONS))
    tokens = st.lists(st.one_of(*[st.tuples(option, VALUE)] * 4, st.tuples(option),
                                st.tuples(VALUE)), max_size=3)
    return st.builds(lambda right, tokens: [command, *(POSITIONALS[command] if right else []),
                                            *(t for group in tokens for t in group)],
                     st.sampled_from([True, True, True, False]), tokens)


ARGV = st.sampled_from(sorted(SUBCOMMANDS)).flatmap(argv_for)


def test_every_command_has_right_positionals_here():
    assert set(POSITIONALS) == set(SUBCOMMANDS)
    for command, positionals in POSITIONALS.items():
        assert parse([command, *positionals])[0] is not None, command


def parse(argv):
    """(args or None, exit status or None, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            return cli.parse_args(argv), None, out.getvalue(), err.getvalue()
        except SystemExit as exc:
            return None, exc.code, out.getvalue(), err.getvalue()


@settings(max_examples=1000, deadline=None)
@given(argv=ARGV)
def test_any_argv_is_values_in_range_or_one_usage_line(argv):
    args, status, out, err = parse(argv)
    if args is None:
        if status == 0:  # --help, --version
            assert out and not err
            return
        assert status == 2, (argv, status, err)
        assert err.count("\n") == 1 and err.endswith("\n"), (argv, err)
        assert err.startswith("socketlab") and ": error: " in err, (argv, err)
        assert err[:-1].isprintable(), (argv, err)
        assert out == ""
        return
    for name, value in vars(args).items():
        if isinstance(value, float):
            assert math.isfinite(value) and 0 <= value <= cli.MAX_SECONDS, (argv, name, value)
        elif isinstance(value, int) and not isinstance(value, bool):
            assert 0 <= value <= 1 << 40, (argv, name, value)


def test_negative_control_argparse_alone_lets_a_timeout_past_epoll():
    """Without the ranges (a plain float option), 1e10 parses, and the loop's select would
    raise OverflowError at the first peer: what the property above rules out."""
    import argparse
    import selectors

    plain = argparse.ArgumentParser()
    plain.add_argument("--timeout", type=float)
    value = plain.parse_args(["--timeout", "1e10"]).timeout
    with selectors.DefaultSelector() as selector:
        try:
            selector.select(value)
        except OverflowError:
            return
    raise AssertionError("epoll took a 1e10 s timeout")


def test_a_servers_commentary_waits_for_the_end_of_the_round():
    """cli._Commentary: lines written to stdout's fd in one write at flush (the loop's round),
    none before; a stream with no fd (an in-process caller's capture) gets each line at once."""
    import io
    import os

    from socketlab import cli

    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as out, os.fdopen(read_end, "rb") as pipe:
        os.set_blocking(read_end, False)
        commentary = cli._Commentary(out)
        commentary.line("Accepted connection from ('192.0.2.1', 40000)")
        commentary.line("Closing connection to ('192.0.2.1', 40000)")
        assert pipe.read() is None  # nothing yet: the round is not over
        commentary.flush()
        assert pipe.read() == (b"Accepted connection from ('192.0.2.1', 40000)\n"
                               b"Closing connection to ('192.0.2.1', 40000)\n")
    captured = io.StringIO()
    commentary = cli._Commentary(captured)
    commentary.line("Connected by ('192.0.2.1', 40000)")
    assert captured.getvalue() == "Connected by ('192.0.2.1', 40000)\n"

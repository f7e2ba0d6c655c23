"""The conformance runner's bad input: one clear line and exit 2, before the lab is touched
(lab_tests/conform/runner.py; the suite itself: lab_tests/guest/test_conformance.py)."""

import pytest

from lab_tests.conform import runner
from lab_tests.harness import REPO


@pytest.mark.parametrize("problem, role, program, command", [
    ("no such folder", "app-client", "/nonexistent/folder", "python3 c.py {host} {port} {action} {value}"),
    ("lacks {action}, {value}", "app-client", "services", "python3 -m socketlab app-client {host} {port}"),
    ("not a file in PROGRAM", "app-client", "services", "python3 app-clien.py {host} {port} {action} {value}"),
    ("runs Python programs only", "app-server", "services", "node server.js {host} {port}"),
    ("ROLE must be one of", "app-cleint", "services", "python3 -m socketlab {host} {port}"),
])
def test_bad_input_is_one_line_and_exit_2_before_the_lab(problem, role, program, command, monkeypatch, capsys):
    """No lab needed: the checks come first (a docker call here would be a bug)."""
    def no_lab(*args, **kwargs):
        raise AssertionError("the lab was touched")
    monkeypatch.setattr(runner, "compose", no_lab)
    monkeypatch.chdir(REPO)
    code = runner.main(["--role", role, "--program", program, "--cmd", command])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("conform: ") and problem in err, err

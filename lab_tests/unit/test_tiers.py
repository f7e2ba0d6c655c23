"""The tiers organise themselves: a test's folder is its tier, and a test outside the tier
folders stops the run instead of falling silently out of ``make check``."""

from pathlib import Path

import pytest

from lab_tests import conftest


class Item:
    """The little of a pytest item the hook reads."""

    def __init__(self, path: Path, marks=()):
        self.path, self.nodeid, self.marks = path, str(path), list(marks)

    def get_closest_marker(self, name):
        return next((m for m in self.marks if m == name), None)

    def add_marker(self, mark):
        self.marks.append(mark.name)


def test_a_test_gets_its_folders_tier():
    item = Item(conftest.REPO / "lab_tests" / "loopback" / "test_new.py")
    conftest.pytest_collection_modifyitems(None, [item])
    assert item.marks == ["loopback"]


def test_a_tier_named_by_the_test_wins():
    item = Item(conftest.REPO / "lab_tests" / "lab" / "test_hardening.py", marks=["guest"])
    conftest.pytest_collection_modifyitems(None, [item])
    assert item.marks == ["guest"]


def test_a_test_outside_the_tier_folders_is_an_error():
    item = Item(conftest.REPO / "lab_tests" / "test_stray.py")
    with pytest.raises(pytest.UsageError, match="must live in one of the tier folders"):
        conftest.pytest_collection_modifyitems(None, [item])


def test_the_guests_tests_run_last_and_the_rest_keep_their_order():
    """README: the guest's tests run after the lab tier (beside the guest's start-up demo)."""
    lab = conftest.REPO / "lab_tests" / "lab"
    items = [Item(lab / "test_a.py"), Item(conftest.REPO / "lab_tests" / "guest" / "test_g.py"),
             Item(lab / "test_hardening.py", marks=["guest"]), Item(lab / "test_b.py")]
    names = [item.nodeid for item in items]
    conftest.pytest_collection_modifyitems(None, items)
    assert [item.nodeid for item in items] == [names[0], names[3], names[1], names[2]]


def test_make_test_repeats_the_lab_sides_failures_at_its_end(tmp_path):
    """A CI log is read from its tail: the lab side's summary comes again after the local side's
    log, and both sides' statuses decide the exit (scripts/test-tiers.sh, run on a fake pytest)."""
    import shutil
    import subprocess

    (tmp_path / "scripts").mkdir()
    shutil.copy(conftest.REPO / "scripts" / "test-tiers.sh", tmp_path / "scripts")
    fake = tmp_path / "fake-pytest"
    fake.write_text('#!/bin/sh\ncase "$2" in\n'
                    '  "lab or guest") printf "lab...\\n== short test summary info ==\\nFAILED lab/test_x.py::t - boom\\n"; exit 1;;\n'
                    '  *) echo "local passed"; exit 0;;\nesac\n')
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "test-tiers.sh")], env={"PYTEST": str(fake), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    tail = done.stdout[done.stdout.index("local passed"):]
    assert "FAILED lab/test_x.py::t - boom" in tail
    assert "the lab side failed (pytest exit 1)" in done.stderr


def run_tiers(tmp_path, shard: str, exit_status: int = 0):
    """scripts/test-tiers.sh with SHARD on a fake pytest that records each run's -m and exits
    EXIT_STATUS; returns (the completed process, the -m of each run)."""
    import shutil
    import subprocess

    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(conftest.REPO / "scripts" / "test-tiers.sh", tmp_path / "scripts")
    fake = tmp_path / "fake-pytest"
    fake.write_text(f'#!/bin/sh\necho "$2" >> "{tmp_path}/runs"\nexit {exit_status}\n')
    fake.chmod(0o755)
    (tmp_path / "runs").write_text("")
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "test-tiers.sh")],
                          env={"PYTEST": str(fake), "PATH": "/usr/bin:/bin", "SHARD": shard},
                          capture_output=True, text=True, timeout=60, check=False)
    return done, sorted((tmp_path / "runs").read_text().splitlines())


@pytest.mark.parametrize("shard, runs", [
    ("all", ["lab or guest", "not (lab or guest)"]),
    ("lab", ["lab and not guest"]),
    ("guest", ["guest"]),
    ("local", ["not (lab or guest)"]),
])
def test_a_shard_runs_its_tiers_only(tmp_path, shard, runs):
    """The CI workflow's matrix (SHARD: lab, guest, local): each runner runs its part; together
    they run what `make test` runs (the lab side's two markers cover "lab or guest")."""
    done, ran = run_tiers(tmp_path, shard)
    assert done.returncode == 0, done.stderr
    assert ran == runs


def test_a_shard_that_collects_nothing_fails(tmp_path):
    done, ran = run_tiers(tmp_path, "guest", exit_status=5)
    assert ran == ["guest"] and done.returncode == 1
    assert "the lab side failed (pytest exit 5)" in done.stderr


def test_an_unknown_shard_is_one_line_and_exit_2(tmp_path):
    done, ran = run_tiers(tmp_path, "gpu")
    assert (done.returncode, ran) == (2, [])
    assert done.stderr == "test-tiers: SHARD must be all, lab, guest or local, not 'gpu'\n"


def test_the_docker_free_side_is_lab_0s_whichever_lab_the_lab_side_is(tmp_path):
    """`make test SOCKETLAB_LAB=1`: the lab side runs against lab 1, the Docker-free side checks
    the docs, whose addresses are lab 0's (docs/scale.md); each run records its SOCKETLAB_LAB."""
    import shutil
    import subprocess

    (tmp_path / "scripts").mkdir()
    shutil.copy(conftest.REPO / "scripts" / "test-tiers.sh", tmp_path / "scripts")
    fake = tmp_path / "fake-pytest"
    fake.write_text(f'#!/bin/sh\necho "$2=${{SOCKETLAB_LAB-unset}}" >> "{tmp_path}/runs"\nexit 0\n')
    fake.chmod(0o755)
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "test-tiers.sh")], capture_output=True, text=True,
                          env={"PYTEST": str(fake), "PATH": "/usr/bin:/bin", "SOCKETLAB_LAB": "1"},
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted((tmp_path / "runs").read_text().splitlines()) == ["lab or guest=1", "not (lab or guest)=unset"]

"""SOCKETLAB_LAB: which lab a command is about (issue 18, docs/scale.md). No Docker here: make's
check, the topology of another instance, and Compose's own reading of the files are the lab
tier's (lab_tests/lab/test_many_labs.py)."""

import ipaddress
import os
import subprocess

import pytest

from lab_tests import topology

REPO = topology.REPO


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # not this run's own instance, nor a make's above this one (MAKEFLAGS passes its variables on)
    environment = {key: value for key, value in os.environ.items()
                   if key not in {"SOCKETLAB_LAB", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"}}
    return subprocess.run(["make", "-s", *args], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**environment, **(env or {})})


@pytest.mark.parametrize("value", ["16", "x", "-1", "01", "1.0", "a'b", "１"])
def test_a_value_that_names_no_lab_stops_make_with_one_line(value):
    out = make("help", f"SOCKETLAB_LAB={value}")
    assert out.returncode == 2, out
    assert out.stdout == "" and len(out.stderr.splitlines()) == 1, out
    assert "is not a lab: give a number from 0 to 15 (unset: lab 0)" in out.stderr


def test_the_same_from_the_environment():
    out = make("help", env={"SOCKETLAB_LAB": "99"})
    assert out.returncode == 2 and "SOCKETLAB_LAB='99' is not a lab" in out.stderr, out


@pytest.mark.parametrize("value", ["", "0", "1", "15"])
def test_negative_control_a_lab_passes(value):
    out = make("help", f"SOCKETLAB_LAB={value}")
    assert out.returncode == 0 and "make up" in out.stdout, out


@pytest.mark.parametrize(("value", "seen"), [("0", "[]"), ("", "[]"), ("2", "[2]")])
def test_lab_0_is_the_unset_variable_for_make(value, seen):
    """make passes 0 on as unset, so Compose's project is socketlab, not socketlab-0."""
    out = make("--eval", 'show-lab: ; @echo "[$$SOCKETLAB_LAB]"', "show-lab", f"SOCKETLAB_LAB={value}")
    assert (out.returncode, out.stdout.strip()) == (0, seen), out


def test_the_topology_reads_the_instance_the_environment_names(monkeypatch):
    def server():
        spec = topology._compose()["services"]["server"]["networks"]["servernet"]
        return ipaddress.ip_address(spec["ipv4_address"]), ipaddress.ip_address(spec["ipv6_address"])

    monkeypatch.delenv("SOCKETLAB_LAB", raising=False)
    lab0_v4, lab0_v6 = server()
    assert topology.instance() == 0 and topology.project() == "socketlab"
    monkeypatch.setenv("SOCKETLAB_LAB", "3")
    assert topology.instance() == 3 and topology.project() == "socketlab-3"
    # the scheme (docs/address-plan.md): 16 N on the third octet, 0x100 N on the third hextet
    assert server() == (lab0_v4 + (3 * 16 << 8), lab0_v6 + (3 * 0x100 << 80))

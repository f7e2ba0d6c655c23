"""guest-supervisor's choice between resuming the boot snapshot and booting (qemu/README.md,
"Boot snapshot"), run here on the host: a snapshot resumes only the machine it was made of, and
nothing of a lab is in that machine (its addresses and keys go in the guest's settings)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import socket

import pytest

from lab_tests import topology

SUPERVISOR = topology.REPO / "qemu" / "bin" / "guest-supervisor"


def load(monkeypatch, guest_dir, **env):
    monkeypatch.setenv("SOCKETLAB_GUEST_DIR", str(guest_dir))
    monkeypatch.setenv("SOCKETLAB_RUN_DIR", str(guest_dir / "run"))
    for name in ("SOCKETLAB_GUEST_MEM", "SOCKETLAB_GUEST_APPEND", "SOCKETLAB_GUEST_SNAPSHOT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    loader = importlib.machinery.SourceFileLoader("guest_supervisor", str(SUPERVISOR))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


@pytest.fixture
def guest_dir(tmp_path, monkeypatch):
    """A guest directory with a kernel, an initramfs and a snapshot made of today's machine."""
    (tmp_path / "vmlinux").write_bytes(b"kernel")
    (tmp_path / "initramfs.cpio").write_bytes(b"initramfs")
    (tmp_path / "snapshot").write_bytes(b"machine state")
    supervisor = load(monkeypatch, tmp_path)
    (tmp_path / "snapshot.json").write_text(json.dumps(supervisor.snapshot_key(supervisor.machine())))
    return tmp_path


def test_the_snapshot_of_this_machine_is_resumed(monkeypatch, guest_dir):
    supervisor = load(monkeypatch, guest_dir)
    assert supervisor.resumable() == str(guest_dir / "snapshot")
    argv = supervisor.qemu_argv("tap,id=net0", supervisor.resumable())
    assert argv[-2:] == ["-incoming", f"exec:cat {guest_dir / 'snapshot'}"]


@pytest.mark.parametrize("change", ["memory", "kernel words", "initramfs", "no key", "switched off"])
def test_negative_control_a_snapshot_of_another_machine_is_not_resumed(monkeypatch, guest_dir, capsys, change):
    env = {}
    if change == "memory":
        env["SOCKETLAB_GUEST_MEM"] = "1024"
    elif change == "kernel words":
        env["SOCKETLAB_GUEST_APPEND"] = "SOCKETLAB_APP_SERVER=0"
    elif change == "initramfs":
        (guest_dir / "initramfs.cpio").write_bytes(b"another initramfs")
    elif change == "no key":
        (guest_dir / "snapshot.json").unlink()
    else:
        env["SOCKETLAB_GUEST_SNAPSHOT"] = "0"
    supervisor = load(monkeypatch, guest_dir, **env)
    assert supervisor.resumable() is None
    said = capsys.readouterr().out
    assert said.startswith("guest-supervisor: booting the guest"), said
    assert "-incoming" not in supervisor.qemu_argv("tap,id=net0", supervisor.resumable())


def test_no_lab_is_in_the_machine_its_settings_say_which_lab(monkeypatch, guest_dir):
    """The same machine (and so the same snapshot) for every lab; the settings differ."""
    def lab_env(n):
        environment = topology.lab_config(n)["services"]["client-ppc"]["environment"]
        return {name: value for name, value in environment.items() if name.startswith("SOCKETLAB_GUEST_")}

    machines, settings = [], []
    for n in (0, 3):
        supervisor = load(monkeypatch, guest_dir, SOCKETLAB_PKI_DIR=str(guest_dir / "no-pki"), **lab_env(n))
        machines.append(supervisor.machine())
        settings.append(supervisor.settings())
    assert machines[0] == machines[1]
    assert all(address not in " ".join(machines[0]) for address in (topology.GUEST_V4, topology.GUEST_V6))
    assert settings[0]["ip"].startswith(topology.GUEST_V4 + "/") and settings[0]["ip6"].startswith(topology.GUEST_V6 + "/")
    assert settings[1]["ip"] != settings[0]["ip"] and settings[1]["ip6"] != settings[0]["ip6"]
    assert settings[0]["entropy"] != settings[1]["entropy"] and settings[0]["pki"] == {}


class SilentRelay:
    """A relay to a guest that never answers its settings."""

    def connect(self, qemu, deadline):
        return True

    def call(self, request, timeout):
        assert "settings" in request
        self.timeout = timeout
        raise socket.timeout("timed out")


class Qemu:
    def __init__(self):
        self.terminated = False

    def poll(self):
        return None

    def terminate(self):
        self.terminated = True


@pytest.mark.parametrize("resuming", [True, False])
def test_a_resumed_guest_that_takes_no_settings_is_stopped_to_be_booted(monkeypatch, guest_dir, resuming):
    """qemu/README.md: a resumed guest that takes no settings within RESUME_TIMEOUT is stopped
    and marked for a boot; a booted one (the control) is left as it is, unready."""
    environment = topology.lab_config(0)["services"]["client-ppc"]["environment"]
    supervisor = load(monkeypatch, guest_dir, SOCKETLAB_PKI_DIR=str(guest_dir / "no-pki"),
                      **{name: value for name, value in environment.items() if name.startswith("SOCKETLAB_GUEST_")})
    relay, qemu, failed_resume = SilentRelay(), Qemu(), []
    supervisor.send_settings(relay, qemu, resuming, failed_resume)
    assert (qemu.terminated, failed_resume) == ((True, [True]) if resuming else (False, []))
    assert relay.timeout == (supervisor.RESUME_TIMEOUT if resuming else 300)

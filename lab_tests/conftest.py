"""Fixtures for every tier: the lab (``lab``, ``capture``) and the tier of each test.

The lab and its API (``lab.run``, ``lab.probe``, ``capture.pcap()`` ...) live in
lab_tests/harness.py; this file wires them into pytest. Environment: see harness.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from lab_tests.harness import ARTIFACTS, DEFAULT_SERVICES, REPO, CaptureWindow, Lab, docker_usable


@pytest.fixture(scope="session")
def lab(request):
    problem = docker_usable()
    if problem:
        if os.environ.get("SOCKETLAB_REQUIRE_LAB") == "1":
            pytest.fail(problem)
        pytest.skip(problem)

    from testcontainers.compose import DockerCompose

    # No registry: the Ryuk reaper image cannot be pulled, and `down` cleans up anyway.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    services: list[str] | None = os.environ.get("SOCKETLAB_LAB_SERVICES", "").split() or list(DEFAULT_SERVICES)
    if any(item.get_closest_marker("guest") for item in request.session.items):
        services = None  # every service, the PowerPC guest included
    compose = DockerCompose(
        context=REPO,
        compose_file_name="compose.yaml",
        build=os.environ.get("SOCKETLAB_LAB_BUILD", "1") != "0",
        wait=True,
        services=services,
    )
    instance = subprocess.run([str(REPO / "scripts" / "lab-instance.py"), "check"], capture_output=True,
                              text=True, check=False)
    if instance.returncode:
        pytest.fail(instance.stderr.strip())  # SOCKETLAB_LAB names no lab
    started = time.monotonic()
    if os.environ.get("SOCKETLAB_LAB_KEEP") != "1":
        # A lab left up (by `make up`, a kept session, another checkout: the project name is
        # the instance's) would carry its state into this session, and `up` recreates only what
        # changed.
        subprocess.run([*compose.compose_command_property, "down", "--remove-orphans"], cwd=REPO,
                       capture_output=True, check=False, timeout=300)
    try:
        compose.start()
    except subprocess.CalledProcessError as exc:
        logs = subprocess.run([*compose.compose_command_property, "logs", "--no-color"], cwd=REPO,
                              capture_output=True, text=True, check=False).stdout
        clash = subprocess.run([str(REPO / "scripts" / "lab-instance.py"), "clash"], capture_output=True,
                               text=True, check=False).stderr  # Docker's "Pool overlaps", explained
        pytest.fail(f"the lab did not come up healthy: {exc}\n{exc.stderr.decode(errors='replace')}\n"
                    f"{clash}--- docker compose logs ---\n{logs}")
    print(f"\nlab: up and healthy after {time.monotonic() - started:.1f} s")
    the_lab = Lab(compose)
    the_lab.capture.start()
    try:
        yield the_lab
    finally:
        the_lab.save_logs(ARTIFACTS / "logs")
        if os.environ.get("SOCKETLAB_LAB_KEEP") != "1":
            compose.stop()


#: The tiers (pytest markers, registered in pyproject.toml): a test's folder is its tier.
TIERS = ("unit", "loopback", "lab", "guest", "fuzz")


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(config, items):
    """Mark every test with its folder's tier, unless it names a tier itself (a guest-booting
    test kept beside the lab's). A test outside the tier folders is an error, so a new file
    can never fall silently out of ``make check`` or ``make test``."""
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        folder = item.path.relative_to(REPO / "lab_tests").parts[0]
        if folder not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: a test must live in one of the tier "
                                    f"folders lab_tests/{{{','.join(TIERS)}}}")
        item.add_marker(getattr(pytest.mark, folder))
    # The guest's tests last (a stable sort): the lab comes up once the guest is ready, and its
    # start-up demo, which every command in the guest queues behind, runs beside the lab tier.
    items.sort(key=lambda item: item.get_closest_marker("guest") is not None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


_REPORTS = pytest.StashKey[dict]()


def _test_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("/")[-1]).strip("_")[:150]


@pytest.fixture(autouse=True)
def capture(request):
    """The router's packets during every test that uses ``lab``; kept as a pcap on failure."""
    if "lab" not in request.fixturenames:
        yield None
        return
    lab: Lab = request.getfixturevalue("lab")
    cap = CaptureWindow(lab.capture, _test_name(request.node.nodeid))
    yield cap
    reports = request.node.stash.get(_REPORTS, {})
    failed = any(r.failed for r in reports.values())
    if failed or os.environ.get("SOCKETLAB_KEEP_CAPTURES") == "1":
        if lab.capture.running():
            path = lab.capture.pcap(cap.name, cap.since - 0.1, time.time() + 0.1)
            saved = lab.capture.save(path, ARTIFACTS / "captures" / f"{cap.name}.pcap")
            print(f"capture: {saved}")
        else:
            print("capture: none (the router's tcpdump is not running: was the router restarted?)")
    if failed:
        print("--- docker compose logs (last 200 lines each) ---")
        for container in lab.compose.get_containers():
            print("\n".join(lab.logs(container.Service).splitlines()[-200:]))

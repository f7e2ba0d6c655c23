"""The demo each client host runs at start-up, as its own test: a wrong answer is a named
failure here (which case, which host), while the lab stays up for every other test.
The hosts turn healthy once their demo has finished, right or wrong."""

import pytest


@pytest.mark.parametrize("service", ["client", pytest.param("client-ppc-user", marks=pytest.mark.guest)])
def test_the_start_up_demo_passed(lab, service):
    status = lab.read_file(service, "/tmp/demo.exit").decode().strip()
    log = lab.logs(service)
    verdicts = [line for line in log.splitlines() if "demo: " in line or line.lstrip().startswith("BAD")]
    assert status == "0", f"the demo in {service} exited {status}:\n" + "\n".join(verdicts)
    assert any("answers correct" in line for line in verdicts), log[-3000:]

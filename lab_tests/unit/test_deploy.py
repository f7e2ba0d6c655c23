"""deploy/k8s/: the class of lab nodes is valid Kubernetes, checked offline against its schemas
(kubernetes-validate, as `make lint-ci` runs it); it is validated here, not run (docs/scale.md)."""

import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
VALIDATE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kubernetes-validate"


def validate(path: Path) -> subprocess.CompletedProcess:
    import shutil
    command = str(VALIDATE) if VALIDATE.exists() else shutil.which("kubernetes-validate")
    return subprocess.run([command, "--strict", str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", sorted(DEPLOY.glob("*.yaml")), ids=lambda p: p.name)
def test_every_manifest_is_valid_kubernetes(path):
    out = validate(path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("passed") == len(list(yaml.safe_load_all(path.read_text())))


def test_negative_control_a_misspelled_field_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((DEPLOY / "class.yaml").read_text().replace("volumeClaimTemplates", "volumeClaimTemplate"))
    out = validate(bad)
    assert out.returncode != 0, out.stdout


def test_the_class_runs_the_lab_node_with_its_engine_volume_and_its_readiness():
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "class.yaml").read_text())}
    pod = docs["StatefulSet"]["spec"]["template"]["spec"]
    node = pod["containers"][0]
    assert node["image"].split("/")[-1].startswith("socketlab-node:")
    assert {env["name"]: env["value"] for env in node["env"]}["SOCKETLAB_LAB_UP"] == "1"
    assert node["securityContext"]["privileged"] is True
    assert node["volumeMounts"][0]["mountPath"] == "/var/lib/docker"
    start = (DEPLOY.parent / "lab-node" / "start.sh").read_text()
    assert node["readinessProbe"]["exec"]["command"][-1] in start  # the file start.sh touches
    assert docs["StatefulSet"]["spec"]["serviceName"] == docs["Service"]["metadata"]["name"]

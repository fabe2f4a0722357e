"""The Kubernetes manifests as kustomize renders them, and a rendered pod's files.

Shared by tests/e2e/test_kubernetes*.py (the rendered specs) and
tests/container/test_kubernetes_pods.py (the same specs run with podman). Rendering
uses Debian's kubectl 1.20 (kustomize v2.0.3), which `make` unpacks into the venv
(`.ci/deb-extract kubernetes-client`).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
BASE = KUSTOMIZE / "base"
TWO_REPLICAS = KUSTOMIZE / "overlays" / "two-replicas"
PRODUCTION = KUSTOMIZE / "overlays" / "production"
GENERATED = KUSTOMIZE / "overlays" / "production-secret-generator"
KUBECTL = Path(sys.prefix) / "debian" / "kubernetes-client" / "usr" / "bin" / "kubectl"

Obj = dict[str, Any]


def render(directory: Path) -> list[Obj]:
    """Every object ``kubectl kustomize directory`` prints, in its order."""
    assert KUBECTL.exists(), f"{KUBECTL} is missing: run `make test` (it unpacks it)"
    done = subprocess.run(
        [str(KUBECTL), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def named(objects: list[Obj]) -> dict[tuple[str, str], Obj]:
    """The objects by (kind, name); a name twice in one kind is an error."""
    found: dict[tuple[str, str], Obj] = {}
    for obj in objects:
        key = (obj["kind"], obj["metadata"]["name"])
        assert key not in found, f"{key} rendered twice"
        found[key] = obj
    return found


def secret_data(secret: Obj) -> dict[str, bytes]:
    """A Secret's keys and values, from ``data`` (base64) and ``stringData``."""
    values = {k: base64.b64decode(v) for k, v in secret.get("data", {}).items()}
    values.update({k: v.encode("utf-8") for k, v in secret.get("stringData", {}).items()})
    return values


@dataclass
class Pod:
    """One container of a rendered workload (Deployment or Job), with its pod spec."""

    workload: Obj
    container: Obj
    spec: Obj = field(init=False)

    def __post_init__(self) -> None:
        self.spec = self.workload["spec"]["template"]["spec"]

    @classmethod
    def of(cls, workload: Obj) -> Pod:
        containers = workload["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, workload["metadata"]["name"]
        return cls(workload, containers[0])

    def environment(self, objects: dict[tuple[str, str], Obj]) -> dict[str, str]:
        """The container's environment as the kubelet builds it: every ``envFrom``
        ConfigMap, then ``env`` (plain values only: secrets come as files here)."""
        env: dict[str, str] = {}
        for source in self.container.get("envFrom", []):
            env.update(objects["ConfigMap", source["configMapRef"]["name"]]["data"])
        for item in self.container.get("env", []):
            assert "valueFrom" not in item, f"{item['name']} comes from an object, not a file"
            env[item["name"]] = item["value"]
        return env

    def mounts(self) -> dict[PurePosixPath, tuple[Obj, Obj]]:
        """Mount path -> (volumeMount, volume)."""
        volumes = {v["name"]: v for v in self.spec.get("volumes", [])}
        return {
            PurePosixPath(m["mountPath"]): (m, volumes[m["name"]])
            for m in self.container.get("volumeMounts", [])
        }

    def volume_of(self, path: str) -> tuple[PurePosixPath, Obj, Obj]:
        """The mount that holds ``path``: (mount path, volumeMount, volume)."""
        target = PurePosixPath(path)
        holders = [(p, m, v) for p, (m, v) in self.mounts().items() if p in target.parents]
        assert len(holders) == 1, f"{path} is on {len(holders)} mounted volumes"
        return holders[0]

    def write_volumes(self, objects: dict[tuple[str, str], Obj], root: Path) -> dict[str, Path]:
        """Each Secret volume's files under ``root``, as the kubelet lays them out: one
        file per key, the volume's ``defaultMode``, the pod's ``fsGroup`` as group.
        Returns mount path -> host folder (emptyDir volumes are left out)."""
        group = self.spec.get("securityContext", {}).get("fsGroup")
        folders: dict[str, Path] = {}
        for path, (_mount, volume) in self.mounts().items():
            if "secret" not in volume:
                continue
            source = volume["secret"]
            folder = root / volume["name"]
            folder.mkdir(parents=True)
            for key, value in secret_data(objects["Secret", source["secretName"]]).items():
                file = folder / key
                file.write_bytes(value)
                file.chmod(source.get("defaultMode", 0o644))
                if group is not None and os.geteuid() == 0:
                    os.chown(file, 0, group)
            folder.chmod(0o755)
            folders[str(path)] = folder
        return folders

"""Secrets, certificates and migrations in the rendered Kubernetes manifests.

Secrets reach the daemon as files through the ``_FILE`` settings
(docs/spec.md#running-e911d), never through a Secret the base ships (one there would
overwrite the real one at every apply). The production overlays add a read-only
certificate volume that Kafka's TLS settings and the DSN's ``sslrootcert``/``sslcert``/
``sslkey`` point at, and a migration Job that runs as the schema's owner while the
daemon runs as a role that may not change the schema (deploy/README.md, Least
privilege). tests/container/test_kubernetes_pods.py runs the same specs with podman.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from e911d.config import load_settings
from tests.manifests import (
    BASE,
    GENERATED,
    PRODUCTION,
    ROOT,
    TWO_REPLICAS,
    Obj,
    Pod,
    named,
    render,
    secret_data,
)

pytestmark = pytest.mark.e2e

TREES = {"base": BASE, "two-replicas": TWO_REPLICAS, "production": PRODUCTION}
CERTS = PurePosixPath("/etc/e911d/certs")
# Settings that name a file the daemon reads: the _FILE forms and the TLS files.
FILE_SETTING = re.compile(r"^E911_.*(_FILE|__SSL_CAFILE|__SSL_CERTFILE|__SSL_KEYFILE)$")


def workloads(objects: dict[tuple[str, str], Obj]) -> list[Pod]:
    return [Pod.of(o) for (kind, _), o in objects.items() if kind in ("Deployment", "Job")]


@pytest.fixture(scope="module")
def generated() -> dict[tuple[str, str], Obj]:
    return named(render(GENERATED))


@pytest.mark.parametrize("tree", TREES.values(), ids=TREES.keys())
def test_no_tree_but_the_generator_overlay_ships_a_secret(tree: Path) -> None:
    """Applying the base or an overlay meant for a secret manager must leave the
    Secrets the manager wrote alone."""
    kinds = [o["kind"] for o in render(tree)]
    assert "Deployment" in kinds
    assert "Secret" not in kinds


def test_generator_overlay_creates_exactly_the_secrets_the_pods_read(
    generated: dict[tuple[str, str], Obj],
) -> None:
    """``behavior: create`` (nothing of these names below it) renders; the names are
    the ones the volumes refer to, with every key a pod mounts."""
    kustomization = yaml.safe_load((GENERATED / "kustomization.yaml").read_text("utf-8"))
    generators = kustomization["secretGenerator"]
    assert {g["behavior"] for g in generators} == {"create"}
    secrets = {name: o for (kind, name), o in generated.items() if kind == "Secret"}
    assert set(secrets) == {g["name"] for g in generators}
    referenced = {
        volume["secret"]["secretName"]
        for pod in workloads(generated)
        for volume in pod.spec["volumes"]
        if "secret" in volume
    }
    assert referenced == set(secrets)
    for secret in secrets.values():
        assert secret["metadata"]["namespace"] == "e911d"
        assert all(value.strip() for value in secret_data(secret).values())


@pytest.mark.parametrize("tree", [BASE, PRODUCTION, GENERATED], ids=["base", "production", "gen"])
def test_every_file_setting_points_into_a_read_only_secret_volume(tree: Path) -> None:
    objects = named(render(tree))
    pods = workloads(objects)
    assert pods
    generated = tree == GENERATED
    for pod in pods:
        files = {k: v for k, v in pod.environment(objects).items() if FILE_SETTING.match(k)}
        assert "E911_POSTGRES__DSN_FILE" in files
        for name, path in files.items():
            mount_path, mount, volume = pod.volume_of(path)
            assert mount.get("readOnly") is True, name
            assert "secret" in volume, name
            key = str(PurePosixPath(path).relative_to(mount_path))
            if generated:
                assert key in secret_data(objects["Secret", volume["secret"]["secretName"]]), name


def test_tls_files_are_on_the_certificate_volume(generated: dict[tuple[str, str], Obj]) -> None:
    """Kafka's CA, client certificate and key and the DSNs' sslrootcert, sslcert and
    sslkey all name files of the one read-only certificate volume (Secret e911d-tls)."""
    for pod in workloads(generated):
        env = pod.environment(generated)
        paths = [v for k, v in env.items() if re.search(r"__SSL_(CA|CERT|KEY)FILE$", k)]
        dsn_file = env["E911_POSTGRES__DSN_FILE"]
        mount_path, _, volume = pod.volume_of(dsn_file)
        secret = secret_data(generated["Secret", volume["secret"]["secretName"]])
        dsn = secret[str(PurePosixPath(dsn_file).relative_to(mount_path))].decode().strip()
        options = {k: v[0] for k, v in parse_qs(urlsplit(dsn).query).items()}
        assert options["sslmode"] == "verify-full"
        paths += [options["sslrootcert"], options["sslcert"], options["sslkey"]]
        assert len(paths) == (6 if pod.workload["kind"] == "Deployment" else 3)
        for path in paths:
            mount_path, mount, volume = pod.volume_of(path)
            assert (mount_path, mount["readOnly"]) == (CERTS, True)
            assert volume["secret"]["secretName"] == "e911d-tls"
            tls = secret_data(generated["Secret", "e911d-tls"])
            assert PurePosixPath(path).name in tls


def test_production_migrates_in_a_job_as_the_owner_and_runs_without_migrating(
    generated: dict[tuple[str, str], Obj],
) -> None:
    """The Job runs `e911d migrate` with the owner's DSN, which the daemon's pods never
    mount; the daemon starts with E911_MIGRATE_ON_START=false (the base keeps the
    default, true, for the simple case of one role)."""
    base = named(render(BASE))
    assert base["ConfigMap", "e911d-config"]["data"]["E911_MIGRATE_ON_START"] == "true"
    job = Pod.of(generated["Job", "e911d-migrate"])
    daemon = Pod.of(generated["Deployment", "e911d"])
    assert job.container["args"] == ["migrate"]
    assert daemon.container["args"] == ["run"]
    assert job.container["image"] == daemon.container["image"]
    assert job.spec["restartPolicy"] == "Never"
    job_env = job.environment(generated)
    daemon_env = daemon.environment(generated)
    assert daemon_env["E911_MIGRATE_ON_START"] == "false"
    # migrate needs PostgreSQL alone: no ConfigMap, so no Kafka setting or credential.
    assert "envFrom" not in job.container
    assert not [k for k in job_env if k.startswith("E911_KAFKA")]

    def secret_names(pod: Pod) -> set[str]:
        return {v["secret"]["secretName"] for v in pod.spec["volumes"] if "secret" in v}

    assert secret_names(job) == {"e911d-migrate-secrets", "e911d-tls"}
    assert secret_names(daemon) == {"e911d-secrets", "e911d-tls"}
    owner = secret_data(generated["Secret", "e911d-migrate-secrets"])["postgres-dsn"]
    app = secret_data(generated["Secret", "e911d-secrets"])["postgres-dsn"]
    assert owner.startswith(b"postgresql://e911d_owner:")
    assert app.startswith(b"postgresql://e911d_app:")


@pytest.mark.parametrize("kind", ["Job", "Deployment"])
def test_both_pods_run_as_the_images_user_on_a_read_only_root(
    generated: dict[tuple[str, str], Obj], kind: str
) -> None:
    containerfile = (ROOT / "deploy" / "Containerfile").read_text("utf-8")
    (user,) = re.findall(r"^USER (\d+):(\d+)$", containerfile, re.MULTILINE)
    uid, gid = map(int, user)
    (pod,) = [p for p in workloads(generated) if p.workload["kind"] == kind]
    context: dict[str, Any] = pod.spec["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (uid, gid, gid)
    assert context["runAsNonRoot"] is True
    assert pod.spec["automountServiceAccountToken"] is False
    assert pod.spec["enableServiceLinks"] is False
    own = pod.container["securityContext"]
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert own["capabilities"]["drop"] == ["ALL"]
    for mount_path, (mount, volume) in pod.mounts().items():
        writable = not mount.get("readOnly")
        assert writable == (mount_path == PurePosixPath("/tmp")), mount_path
        if "secret" in volume:
            assert volume["secret"]["defaultMode"] == 0o440  # the owner and fsGroup only


def test_job_settings_load_from_its_files(
    generated: dict[tuple[str, str], Obj], tmp_path: Path
) -> None:
    job = Pod.of(generated["Job", "e911d-migrate"])
    env = job.environment(generated)
    folders = job.write_volumes(generated, tmp_path)
    mount_path, _, _ = job.volume_of(env["E911_POSTGRES__DSN_FILE"])
    relative = PurePosixPath(env["E911_POSTGRES__DSN_FILE"]).relative_to(mount_path)
    env["E911_POSTGRES__DSN_FILE"] = str(folders[str(mount_path)] / relative)
    settings = load_settings(environ=env)
    assert settings.postgres.dsn.get_secret_value().startswith("postgresql://e911d_owner:")


def test_the_documented_dsn_shapes_verify_the_server_without_a_home(tmp_path: Path) -> None:
    """The image's HOME does not exist, so a DSN that verifies the server must name its
    CA: a file on the certificate volume, or ``system`` (docs/spec.md#running-e911d).
    deploy/README.md's Secrets section shows one of each; both load as settings."""
    readme = (ROOT / "deploy" / "README.md").read_text("utf-8")
    shapes = re.findall(r"^ {4}(postgresql://\S+)$", readme, re.MULTILINE)
    assert len(shapes) == 2
    roots = set()
    for dsn in shapes:
        options = {k: v[0] for k, v in parse_qs(urlsplit(dsn).query).items()}
        assert options["sslmode"] == "verify-full"
        roots.add(options["sslrootcert"])
        file = tmp_path / "dsn"
        file.write_text(dsn.replace("…", "secret") + "\n")
        settings = load_settings(environ={"E911_POSTGRES__DSN_FILE": str(file)})
        assert settings.postgres.dsn.get_secret_value().endswith(urlsplit(dsn).query)
    assert roots == {"system", str(CERTS / "ca.crt")}

"""The production overlay's Job and Deployment, run with podman as a kubelet would.

The manifests are rendered by kustomize (an overlay written here on top of
overlays/production-secret-generator, as a platform team writes theirs: its Secrets
replaced with the test database's DSNs, its ConfigMap pointed at the embedded broker)
and each rendered container spec is translated into a `podman run`: the image and
args, the environment from the ConfigMap (envFrom) and env, the pod's user and group,
the read-only root, dropped capabilities, no privilege escalation, the emptyDir as a
tmpfs and each Secret volume as files written from the rendered Secret (its
defaultMode, the pod's fsGroup as group) mounted read-only. Nothing else is writable:
podman's own tmpfs on /tmp, /run and /var/tmp is turned off. The image's HEALTHCHECK
is too: Kubernetes ignores it (the Deployment's probes stand in for it).

Against the embedded broker and PostgreSQL (PostgreSQL listens on a Unix socket, which
is mounted in; TLS is not tried: neither embedded server speaks it), with the roles of
deploy/README.md's Least privilege section:
1. the daemon before migrating refuses to start, naming `e911d migrate`;
2. the Job migrates as the schema's owner and exits 0;
3. the daemon, as the role that may not change the schema, becomes ready, stores a
   login and publishes its alert, and exits 0 on SIGTERM.

Slow (containers start in seconds) and needs podman, runc and the image that
`make image-check` builds: `make container-check` runs it; `make test` does not.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
import yaml

from e911d.daemon.commands.embedded import EmbeddedBroker
from tests.conftest import FAST_CHECKS
from tests.integration.test_least_privilege import as_role, sql_block
from tests.manifests import GENERATED, ROOT, Obj, Pod, named, render
from tests.ports import held_port
from tests.support import Producer, Topics, TopicWatcher, directory, eventually, http_get, login

pytestmark = pytest.mark.timeout(600)

IMAGE = "localhost/e911d:check"  # what `make image-check` builds
SOCKET_DIR = "/run/e911d-pg"  # where the containers see PostgreSQL's socket


async def podman(*args: str, seconds: float = 120) -> tuple[int, str]:
    """Exit code and output (stdout and stderr) of one podman command."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "image" / "containers.conf"))
    process = await asyncio.create_subprocess_exec(
        "podman",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    async with asyncio.timeout(seconds):
        out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode("utf-8", "replace")


def run_args(pod: Pod, objects: dict[tuple[str, str], Obj], folders: dict[str, Path]) -> list[str]:
    """`podman run` arguments for the rendered container, field by field."""
    pod_context = pod.spec["securityContext"]
    own = pod.container["securityContext"]
    args = [
        "--network",
        "host",
        "--user",
        f"{pod_context['runAsUser']}:{pod_context['runAsGroup']}",
    ]
    assert pod_context["runAsNonRoot"] is True and own["runAsNonRoot"] is True
    assert own["readOnlyRootFilesystem"] is True
    args += ["--read-only", "--read-only-tmpfs=false"]
    args.append("--no-healthcheck")  # the kubelet ignores the image's HEALTHCHECK
    if own["allowPrivilegeEscalation"] is False:
        args += ["--security-opt", "no-new-privileges"]
    for capability in own["capabilities"]["drop"]:
        args += ["--cap-drop", capability]
    for path, (mount, volume) in pod.mounts().items():
        if "emptyDir" in volume:
            size = volume["emptyDir"]["sizeLimit"].replace("Mi", "m")
            args += ["--tmpfs", f"{path}:rw,size={size},mode=1777"]
        else:
            assert "secret" in volume, volume
            access = "ro" if mount.get("readOnly") else "rw"
            args += ["--volume", f"{folders[str(path)]}:{path}:{access}"]
    for name, value in pod.environment(objects).items():
        args += ["--env", f"{name}={value}"]
    if "command" in pod.container:
        args += ["--entrypoint", json.dumps(pod.container["command"])]
    return [*args, pod.container["image"], *pod.container.get("args", [])]


def write_overlay(
    folder: Path, broker: EmbeddedBroker, topics: Topics, dsns: dict[str, str], port: int
) -> None:
    """A platform team's overlay on the generator overlay, for this machine."""
    folder.mkdir()
    (folder / "app-dsn").write_text(dsns["app"] + "\n")
    (folder / "owner-dsn").write_text(dsns["owner"] + "\n")
    (folder / "kafka-sasl-password").write_text("unused\n")
    data: dict[str, Any] = {
        "E911_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        # The embedded broker speaks neither TLS nor SASL.
        "E911_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT",
        "E911_KAFKA__SASL_MECHANISM": None,
        "E911_KAFKA__SASL_USERNAME": None,
        "E911_KAFKA__SSL_CAFILE": None,
        "E911_KAFKA__SSL_CERTFILE": None,
        "E911_KAFKA__SSL_KEYFILE": None,
        "E911_KAFKA__GROUP_ID": f"g{uuid.uuid4().hex[:8]}",
        "E911_KAFKA__SESSION_TIMEOUT_MS": "1000",
        "E911_KAFKA__HEARTBEAT_INTERVAL_MS": "200",
        "E911_HTTP__HOST": "127.0.0.1",
        "E911_HTTP__PORT": str(port),
    }
    for role, topic in topics.as_settings().items():
        data[f"E911_KAFKA__TOPICS__{role.upper()}"] = topic
    for name, value in FAST_CHECKS.items():
        data[f"E911_CHECKS__{name.upper()}"] = str(value)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "e911d-config"},
        "data": data,
    }
    (folder / "configmap.yaml").write_text(yaml.safe_dump(configmap))
    no_sasl = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "e911d"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "e911d",
                            "env": [{"name": "E911_KAFKA__SASL_PASSWORD_FILE", "$patch": "delete"}],
                        }
                    ]
                }
            }
        },
    }
    (folder / "no-sasl.yaml").write_text(yaml.safe_dump(no_sasl))
    kustomization = {
        "namespace": "e911d",
        "bases": [os.path.relpath(GENERATED, folder)],  # kustomize v2: no absolute paths
        "images": [{"name": "localhost/e911d", "newTag": IMAGE.rsplit(":", 1)[1]}],
        "generatorOptions": {"disableNameSuffixHash": True},
        # The namespace too: replace looks the Secret up by name and namespace.
        "secretGenerator": [
            {
                "name": "e911d-secrets",
                "namespace": "e911d",
                "behavior": "replace",
                "files": ["postgres-dsn=app-dsn", "kafka-sasl-password"],
            },
            {
                "name": "e911d-migrate-secrets",
                "namespace": "e911d",
                "behavior": "replace",
                "files": ["postgres-dsn=owner-dsn"],
            },
        ],
        "patchesStrategicMerge": ["configmap.yaml", "no-sasl.yaml"],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))


def in_container(dsn: str, role: str) -> str:
    """The role's DSN as the containers see PostgreSQL (its socket is mounted in)."""
    database = urlsplit(dsn).path
    return f"postgresql://{role}@{database}?host={SOCKET_DIR}"


async def test_the_rendered_job_migrates_and_the_rendered_daemon_runs_least_privileged(
    broker: EmbeddedBroker, topics: Topics, empty_database: str, tmp_path: Path
) -> None:
    prefix = f"e911_{uuid.uuid4().hex[:8]}"
    owner, app = f"{prefix}_owner", f"{prefix}_app"
    dbname = urlsplit(empty_database).path.lstrip("/")
    names = {"e911d_owner": owner, "e911d_app": app, "DATABASE e911d": f'DATABASE "{dbname}"'}
    socket = Path(parse_qs(urlsplit(empty_database).query)["host"][0]) / ".s.PGSQL.5432"
    containers: list[str] = []
    admin = await asyncpg.connect(empty_database)
    try:
        for statement in sql_block("e911d least privilege: administrator", names):
            await admin.execute(statement)
        with held_port() as port:
            pass  # the daemon binds it; nothing else asks for a port meanwhile
        dsns = {
            "owner": in_container(empty_database, owner),
            "app": in_container(empty_database, app),
        }
        write_overlay(tmp_path / "overlay", broker, topics, dsns, port)
        objects = named(render(tmp_path / "overlay"))
        job = Pod.of(objects["Job", "e911d-migrate"])
        daemon = Pod.of(objects["Deployment", "e911d"])
        assert job.container["image"] == daemon.container["image"] == IMAGE
        socket_mount = ["--volume", f"{socket}:{SOCKET_DIR}/.s.PGSQL.5432"]

        async def run(pod: Pod, *how: str) -> tuple[str, int, str]:
            name = f"e911d-{pod.workload['kind'].lower()}-{uuid.uuid4().hex[:8]}"
            containers.append(name)
            folders = pod.write_volumes(objects, tmp_path / name)
            code, out = await podman(
                "run", "--name", name, *how, *socket_mount, *run_args(pod, objects, folders)
            )
            return name, code, out

        # 1. Before the Job: the least-privileged daemon stops at once, saying what to do.
        began = time.monotonic()
        _, code, out = await run(daemon)
        assert code != 0, out
        assert "migrations pending" in out and "e911d migrate" in out, out
        refused = time.monotonic() - began

        # 2. The Job, as the schema's owner.
        began = time.monotonic()
        _, code, out = await run(job)
        assert code == 0, out
        migrated = time.monotonic() - began
        assert await admin.fetchval("SELECT count(*) FROM schema_migrations") > 0
        owner_conn = await asyncpg.connect(as_role(empty_database, owner))
        try:
            for statement in sql_block("e911d least privilege: schema owner", names):
                await owner_conn.execute(statement)
        finally:
            await owner_conn.close()

        # 3. The daemon, as the role that may not change the schema.
        began = time.monotonic()
        name, code, out = await run(daemon, "--detach")
        assert code == 0, out

        async def ready() -> bool:
            try:
                return (await http_get(port, "/readyz"))[0] == 200
            except OSError:
                return False

        await eventually(ready, within=120, step=0.5)
        became_ready = time.monotonic() - began
        async with (
            Producer(broker.bootstrap_servers) as p,
            TopicWatcher(broker.bootstrap_servers, topics.alerts) as alerts,
        ):
            await p.send_all(topics.directory_events, directory(), key="acme")
            await p.send(topics.session_events, login("acme", "u1", "s1", "198.51.100.7"), "u1")

            async def stored() -> bool:
                return bool(await admin.fetchval("SELECT count(*) FROM sessions"))

            await eventually(stored, within=30)
            raised = await alerts.wait_count("e911.alert.raised", 1, within=30)
            assert raised[0].data["session_id"] == "s1"
        code, out = await podman("kill", "--signal", "TERM", name)
        assert code == 0, out
        code, out = await podman("wait", name, seconds=30)
        assert out.strip() == "0", out
        print(  # the timings, for deploy/README.md (pytest -s shows them)
            f"refused in {refused:.1f}s, migrated in {migrated:.1f}s, ready in {became_ready:.1f}s"
        )
    finally:
        for name in containers:
            await podman("rm", "--force", "--time", "0", name)
        await admin.execute(f'REASSIGN OWNED BY "{owner}", "{app}" TO CURRENT_USER')
        for role in (app, owner):
            await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.close()
        other = await asyncpg.connect(empty_database)
        try:
            await other.execute(f'DROP ROLE IF EXISTS "{app}"')
            await other.execute(f'DROP ROLE IF EXISTS "{owner}"')
        finally:
            await other.close()

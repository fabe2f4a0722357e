"""The Kubernetes manifests as a cluster would get them: rendered by a real kustomize,
every object checked field by field against the Kubernetes API schema, and the
objects checked against each other and against the daemon's own settings.

Rendering uses Debian's kubectl 1.20 (kustomize v2.0.3), which `make` unpacks into the
venv (`.ci/deb-extract kubernetes-client`): a fixed, installable renderer rather
than whichever kubectl a machine happens to have. The manifests stay within what
every kustomize since v2 renders the same way (kubectl 1.32's kustomize v5.5 gave
byte-identical output when compared).

Validation uses kubernetes-validate's bundled JSON schemas (offline), in their strict
form: an object with a field the API does not know (a typo) fails, as it would under
`kubectl apply --validate=strict`. The ServiceMonitor is a custom resource with no
bundled schema; tests/e2e/schemas holds a strict one for the fields it may use.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate import utils
from referencing import Registry, Resource

from e911d.config import load_settings
from tests.manifests import BASE, GENERATED, PRODUCTION, ROOT, TWO_REPLICAS, Pod, named, render

pytestmark = pytest.mark.e2e

SCHEMAS = Path(__file__).parent / "schemas"
# The oldest Kubernetes the manifests are meant for, and the newest schema bundled.
K8S_VERSIONS = ["1.27", utils.major_minor(utils.latest_version())]
MEASURED_RSS_MIB = 418  # one instance holding 1,000,000 sessions (performance issue)
APP_LABELS = {"app.kubernetes.io/name": "e911d", "app.kubernetes.io/component": "daemon"}
# The second ConfigMap of the base: the Grafana dashboard (base/monitoring), keyed by
# kind and name in by_kind so that "ConfigMap" stays the daemon's settings.
DASHBOARD_CONFIGMAP = "ConfigMap/e911d-dashboard"


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    def key(o: dict[str, Any]) -> str:
        named = f"{o['kind']}/{o['metadata']['name']}"
        return named if named == DASHBOARD_CONFIGMAP else str(o["kind"])

    kinds = [key(o) for o in objects]
    assert len(kinds) == len(set(kinds)), f"one object per kind expected: {kinds}"
    return {key(o): o for o in objects}


def _custom_validator(version: str, kind: str) -> jsonschema.Draft202012Validator:
    definitions = utils.schema_contents(
        f"kubernetes-json-schema/v{version}.0-local-strict/_definitions.json", version
    )
    schema = json.loads((SCHEMAS / f"{kind.lower()}-monitoring-v1.json").read_text("utf-8"))
    registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate(obj: dict[str, Any], version: str) -> None:
    """Raise jsonschema.ValidationError when ``obj`` is not a valid object of its kind.

    A kind with no schema is an error too: every object rendered must be checked.
    """
    if obj["apiVersion"] == "monitoring.coreos.com/v1":
        _custom_validator(version, obj["kind"]).validate(obj)
    else:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.fixture(scope="module")
def base() -> dict[str, dict[str, Any]]:
    return by_kind(render(BASE))


@pytest.fixture(scope="module")
def two_replicas() -> dict[str, dict[str, Any]]:
    return by_kind(render(TWO_REPLICAS))


def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def test_base_holds_every_object_the_daemon_needs(base: dict[str, dict[str, Any]]) -> None:
    # No Secret: one in the base would overwrite the real one at every apply.
    assert set(base) == {
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        DASHBOARD_CONFIGMAP,
    }


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize(
    ("tree", "count"),
    [(BASE, 7), (TWO_REPLICAS, 7), (PRODUCTION, 8), (GENERATED, 11)],
    ids=["base", "two-replicas", "production", "production-secret-generator"],
)
def test_every_rendered_object_matches_the_kubernetes_schema(
    tree: Path, count: int, version: str
) -> None:
    objects = render(tree)
    assert len(objects) == count
    for obj in objects:
        validate(obj, version)


def _typos(objects: dict[str, dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """One misspelt field at a time, at each depth the manifests have."""
    deployment = copy.deepcopy(objects["Deployment"])
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    yield "Deployment spec.replica", deployment

    deployment = copy.deepcopy(objects["Deployment"])
    probe_owner = deployment["spec"]["template"]["spec"]["containers"][0]
    probe_owner["readinesProbe"] = probe_owner.pop("readinessProbe")
    yield "container readinesProbe", deployment

    deployment = copy.deepcopy(objects["Deployment"])
    context = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    context["readOnlyRootFileSystem"] = context.pop("readOnlyRootFilesystem")
    yield "securityContext readOnlyRootFileSystem", deployment

    pdb = copy.deepcopy(objects["PodDisruptionBudget"])
    pdb["spec"]["maxUnavailble"] = pdb["spec"].pop("maxUnavailable")
    yield "PodDisruptionBudget maxUnavailble", pdb

    service = copy.deepcopy(objects["Service"])
    service["spec"]["ports"][0]["targetport"] = service["spec"]["ports"][0].pop("targetPort")
    yield "Service targetport", service

    monitor = copy.deepcopy(objects["ServiceMonitor"])
    monitor["spec"]["endpoints"][0]["intervall"] = monitor["spec"]["endpoints"][0].pop("interval")
    yield "ServiceMonitor intervall", monitor

    monitor = copy.deepcopy(objects["ServiceMonitor"])
    monitor["metadata"]["label"] = monitor["metadata"].pop("labels")
    yield "ServiceMonitor metadata.label", monitor

    monitor = copy.deepcopy(objects["ServiceMonitor"])
    monitor["spec"]["joblabel"] = monitor["spec"].pop("jobLabel")
    yield "ServiceMonitor joblabel", monitor

    rule = copy.deepcopy(objects["PrometheusRule"])
    rule["spec"]["groups"][0]["rules"][0]["fore"] = rule["spec"]["groups"][0]["rules"][0].pop("for")
    yield "PrometheusRule fore", rule


def test_a_misspelt_field_fails_validation(base: dict[str, dict[str, Any]]) -> None:
    version = K8S_VERSIONS[-1]
    for obj in base.values():
        validate(obj, version)  # the originals pass, so each failure is the typo's
    cases = list(_typos(base))
    assert len(cases) == 9
    for what, broken in cases:
        with pytest.raises(jsonschema.ValidationError, match="Additional properties"):
            validate(broken, version)
            pytest.fail(f"{what} passed validation")


def test_a_wrong_type_fails_validation(base: dict[str, dict[str, Any]]) -> None:
    deployment = copy.deepcopy(base["Deployment"])
    deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        validate(deployment, K8S_VERSIONS[-1])


def test_two_replicas_overlay_changes_only_replicas_and_namespace(
    base: dict[str, dict[str, Any]], two_replicas: dict[str, dict[str, Any]]
) -> None:
    assert base["Deployment"]["spec"]["replicas"] == 1
    assert two_replicas["Deployment"]["spec"]["replicas"] == 2
    for kind, obj in two_replicas.items():
        assert obj["metadata"]["namespace"] == "e911d", kind
        unchanged = copy.deepcopy(obj)
        del unchanged["metadata"]["namespace"]
        if kind == "Deployment":
            unchanged["spec"]["replicas"] = 1
        assert unchanged == base[kind], kind


def test_probes_ports_and_selectors_fit_together(base: dict[str, dict[str, Any]]) -> None:
    pod = base["Deployment"]["spec"]["template"]
    assert pod["metadata"]["labels"] == APP_LABELS
    assert base["Deployment"]["spec"]["selector"]["matchLabels"] == APP_LABELS
    assert base["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == APP_LABELS
    assert base["Service"]["spec"]["selector"] == APP_LABELS
    service_labels = base["Service"]["metadata"]["labels"]
    monitor = base["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service_labels.items()

    c = container(base)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    http_port = int(base["ConfigMap"]["data"]["E911_HTTP__PORT"])
    assert ports == {"metrics": http_port}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    service_port = base["Service"]["spec"]["ports"][0]
    assert (service_port["name"], service_port["targetPort"]) == ("metrics", "metrics")
    assert monitor["endpoints"][0]["port"] == service_port["name"]
    assert monitor["endpoints"][0]["path"] == "/metrics"


def test_pod_runs_as_the_images_non_root_user_on_a_read_only_root(
    base: dict[str, dict[str, Any]],
) -> None:
    containerfile = (ROOT / "deploy" / "Containerfile").read_text("utf-8")
    user = re.findall(r"^USER (\d+):(\d+)$", containerfile, re.MULTILINE)
    assert len(user) == 1
    uid, gid = map(int, user[0])
    pod = base["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        uid,
        gid,
    )
    c = container(base)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == {"/tmp", "/run/secrets/e911d"}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/run/secrets/e911d"]]["secret"]["secretName"] == "e911d-secrets"
    assert all(m.get("readOnly") for m in c["volumeMounts"] if m["mountPath"] != "/tmp")
    assert pod["enableServiceLinks"] is False


def test_grace_period_outlasts_the_daemons_own_shutdown(
    base: dict[str, dict[str, Any]],
) -> None:
    shutdown = float(base["ConfigMap"]["data"]["E911_SHUTDOWN_TIMEOUT_SECONDS"])
    client_close = 3.0  # closing consumer, producer and pool after the timeout
    grace = base["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > shutdown + client_close


def test_memory_is_sized_from_the_measured_rss(base: dict[str, dict[str, Any]]) -> None:
    resources = container(base)["resources"]

    def mib(quantity: str) -> int:
        assert quantity.endswith("Mi"), quantity
        return int(quantity[:-2])

    request = mib(resources["requests"]["memory"])
    limit = mib(resources["limits"]["memory"])
    assert MEASURED_RSS_MIB < request < limit <= 2 * MEASURED_RSS_MIB


def test_configmap_and_secret_files_are_settings_the_daemon_accepts(tmp_path: Path) -> None:
    """The Deployment's environment (ConfigMap and env) with the generated Secrets laid
    out as files, loaded as the daemon would at start: an unknown key, a bad value or
    a ``_FILE`` path that is not on a mounted volume stops it there, so catch it here."""
    objects = named(render(GENERATED))
    pod = Pod.of(objects["Deployment", "e911d"])
    env = pod.environment(objects)
    folders = pod.write_volumes(objects, tmp_path)
    for name, value in list(env.items()):
        for mount, folder in folders.items():
            if value.startswith(mount + "/"):
                env[name] = str(folder) + value[len(mount) :]
    secrets = {name: value for name, value in env.items() if name.endswith("_FILE")}
    assert set(secrets) == {"E911_POSTGRES__DSN_FILE", "E911_KAFKA__SASL_PASSWORD_FILE"}
    settings = load_settings(environ=env)
    assert settings.postgres.dsn.get_secret_value().startswith("postgresql://e911d_app:")
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.migrate_on_start is False

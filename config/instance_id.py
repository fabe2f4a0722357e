"""The consumer's static group membership id (Kafka's ``group.instance.id``).

An instance with a static id that restarts is given back the partitions it held,
without a rebalance of the others and without waiting out the session timeout for
its dead predecessor. The price: a static member does not leave the group when it
stops (aiokafka sends no LeaveGroup for it, as Kafka's own client), so its partitions
wait up to the session timeout for it to come back before they move. That suits an
instance that comes back under the same name (a StatefulSet pod, a VM), and hurts one
that never does (a Deployment pod, whose name changes on every rollout): the default
is therefore the pod's name only for a StatefulSet pod, and unset otherwise.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping

# Kafka's rule for group.instance.id (and topic names): these characters, 1 to 249.
_LEGAL = re.compile(r"[A-Za-z0-9._-]+")
MAX_LENGTH = 249

# A StatefulSet pod is named <statefulset>-<ordinal>: a DNS label ending in "-", then
# the ordinal in decimal without a leading zero. Every pod a controller names at random
# (Deployment, ReplicaSet, DaemonSet, Job) ends in "-" and 5 characters, which this
# never matches as it takes at most 4 digits.
_STATEFULSET_POD = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?-(0|[1-9][0-9]{0,3})")


def statefulset_pod_id(hostname: str, environ: Mapping[str, str]) -> str | None:
    """The pod's name when this runs in a Kubernetes StatefulSet pod, else None.

    Kubernetes sets ``KUBERNETES_SERVICE_HOST`` in every container and names the pod's
    host after the pod. Outside Kubernetes a host name says nothing about being
    unique to one instance (two instances on one host share it, and two members with
    one static id fence each other), so nothing is guessed there.
    """
    if not environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    name = hostname.split(".", 1)[0]
    return name if _STATEFULSET_POD.fullmatch(name) else None


def default_group_instance_id() -> str | None:
    """The setting's default, read from this process's host and environment."""
    return statefulset_pod_id(socket.gethostname(), os.environ)


def check_group_instance_id(value: str | None) -> str | None:
    """None or "" is dynamic membership; anything else must be a legal Kafka id."""
    if value is None or value == "":
        return None
    if len(value) > MAX_LENGTH:
        raise ValueError(f"E911_KAFKA__GROUP_INSTANCE_ID is longer than {MAX_LENGTH} characters")
    if value in (".", "..") or not _LEGAL.fullmatch(value):
        raise ValueError(
            f"E911_KAFKA__GROUP_INSTANCE_ID {value!r} may hold only ASCII letters, digits, "
            "'.', '_' and '-' (and is not '.' or '..'); set it empty for dynamic membership"
        )
    return value

"""One example event of every type, for the contracts' ``examples`` (docs/events.md).

An example a subscriber copies must be one the daemon really reads or writes: the
inbound ones are run through the daemon's own decoders (an example they refuse stops
``e911d contracts``), and the alerts are encoded by the alert store itself, from a
check's verdict, exactly as they are published.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Final

import msgspec

from e911d.consumers.envelope import encode_event
from e911d.consumers.wire import decode_directory_event, decode_session_event
from e911d.daemon.core.address import address_line
from e911d.daemon.core.events import Invalid
from e911d.daemon.core.model import (
    Location,
    MatchedBy,
    Outcome,
    Recommendation,
    RecommendationKind,
    ResolveReason,
    Verdict,
)
from e911d.daemon.store.alert_data import RAISED, RESOLVED
from e911d.daemon.store.alerts import (
    AlertStore,
    ResolvedAlert,
    SessionRef,
    raised_alert,
)

PRODUCER: Final = "urn:example:session-service"
CONSOLE: Final = "urn:example:console"
LOGIN_AT: Final = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
CHECKED_AT: Final = LOGIN_AT + dt.timedelta(minutes=10)
RESOLVED_AT: Final = CHECKED_AT + dt.timedelta(minutes=15)
SESSION: Final = SessionRef("s-9001", "acme", "u-42", 0)
_WHO: Final = {"account_id": "acme", "user_id": "u-42", "session_id": "s-9001"}
_ADDRESS: Final = {
    "street": "100 Main Street",
    "building": "2",
    "floor": "3",
    "unit": "Suite 301",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62701",
    "country": "US",
}
_HOME_ADDRESS: Final = {
    "street": "12 Elm Street",
    "unit": "2B",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62704",
    "country": "US",
}
_NETWORK: Final = {
    "bssid": "f0:6e:0b:c2:03:21",
    "switch": {"chassis_id": "00:1a:2b:3c:4d:5e", "port_id": "Gi1/0/12"},
}


def _raised() -> tuple[str, bytes]:
    """The alert of the spec's example: assigned "Headquarters", found on the home
    office's network by its IP."""
    home = Location("home", "Home office", address_line=address_line(_HOME_ADDRESS))
    verdict = Verdict(
        Outcome.MISMATCH,
        Location("hq", "Headquarters", address_line=address_line(_ADDRESS)),
        Recommendation(RecommendationKind.IP_GROUP_MATCH, (home,), MatchedBy.IP),
    )
    alert = raised_alert(SESSION, "198.51.100.23", LOGIN_AT, 1, verdict, CHECKED_AT)
    return alert.alert_id, AlertStore("e911.alerts", "urn:e911d").raised_event(alert).value


def _inbound(alert_id: str) -> dict[str, dict[str, Any]]:
    return {
        "e911.session.login": {**_WHO, "ip": "198.51.100.23", "network": _NETWORK},
        "e911.session.ip_changed": {**_WHO, "ip": "2001:db8::17"},
        "e911.session.logout": dict(_WHO),
        "e911.alert.dismissed": {**_WHO, "alert_id": alert_id},
        "e911.account.upserted": {"account_id": "acme", "e911_recommendations": True},
        "e911.account.deleted": {"account_id": "acme"},
        "e911.user.upserted": {
            "account_id": "acme",
            "user_id": "u-42",
            "e911_recommendations": False,
            "e911_location_id": "hq",
        },
        "e911.user.location_changed": {
            "account_id": "acme",
            "user_id": "u-42",
            "e911_location_id": "home",
            "changed_via": "app",
            "session_id": "s-9001",
        },
        "e911.user.deleted": {"account_id": "acme", "user_id": "u-42"},
        "e911.location.upserted": {
            "account_id": "acme",
            "location_id": "hq",
            "name": "Headquarters",
            "address": _ADDRESS,
            "coordinates": {"lat": 39.7817, "lon": -89.6501},
        },
        "e911.location.deleted": {"account_id": "acme", "location_id": "hq"},
        "e911.ip_group.upserted": {
            "account_id": "acme",
            "ip_group_id": "hq-lan",
            "name": "HQ LAN",
            "location_id": "hq",
            "addresses": ["203.0.113.0/24", "2001:db8:10::/48", "192.0.2.10-192.0.2.20"],
            "bssids": ["f0:6e:0b:c2:03:2*"],
            "switches": [{"chassis_id": "00:1b:54:aa:bb:cc", "port_id": "Gi1/0/12"}],
            "locating": True,
        },
        "e911.ip_group.deleted": {"account_id": "acme", "ip_group_id": "hq-lan"},
    }


def _encoded_inbound(event_type: str, data: dict[str, Any]) -> bytes:
    session = event_type.startswith(("e911.session.", "e911.alert."))
    value = encode_event(
        type_=event_type,
        event_id=f"{event_type.rsplit('.', 1)[1]}-0001",
        source=PRODUCER if session else CONSOLE,
        time=LOGIN_AT,
        data=data,
    )
    decode = decode_session_event if session else decode_directory_event
    decoded = decode(value, 65_536)
    if isinstance(decoded, Invalid):
        raise ValueError(f"the example {event_type} is refused by the daemon: {decoded}")
    return value


@functools.cache
def example_events() -> dict[str, dict[str, Any]]:
    """Every event type's example, as the structured-mode CloudEvent on the wire."""
    alert_id, raised = _raised()
    resolved = AlertStore("e911.alerts", "urn:e911d").resolved_event(
        ResolvedAlert(alert_id, SESSION, ResolveReason.LOCATION_UPDATED, RESOLVED_AT)
    )
    values = {t: _encoded_inbound(t, d) for t, d in _inbound(alert_id).items()}
    values[RAISED] = raised
    values[RESOLVED] = resolved.value
    return {t: msgspec.json.decode(v) for t, v in values.items()}

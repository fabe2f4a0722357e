"""A raised alert is typed values; its event data is built from them, in one shape."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from e911d.daemon.core.model import (
    Location,
    MatchedBy,
    Outcome,
    Recommendation,
    RecommendationKind,
    ResolveReason,
    Verdict,
)
from e911d.daemon.store.alerts import (
    AlertStore,
    ResolvedAlert,
    SessionRef,
    alert_id_for,
    raised_alert,
)

HQ = Location("hq", "Headquarters", address_line="100 Main St, Floor 3, Springfield, IL 62701, US")
HOME = Location("home", "Home office", address_line="12 Elm St, Springfield, IL 62704, US")
T = dt.datetime(2026, 11, 26, 9, 10, tzinfo=dt.UTC)
LOGIN = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
REF = SessionRef("s1", "acme", "u1", 3)


def mismatch() -> Verdict:
    return Verdict(
        Outcome.MISMATCH,
        assigned_location=HQ,
        recommendation=Recommendation(RecommendationKind.IP_GROUP_MATCH, (HOME,), MatchedBy.IP),
    )


def test_the_raised_event_data_is_built_from_the_typed_values() -> None:
    verdict = mismatch()
    alert = raised_alert(REF, "198.51.100.23", LOGIN, 1, verdict, T)
    assert alert.recommendation.kind is RecommendationKind.IP_GROUP_MATCH
    assert alert.recommendation.locations == (HOME,)
    assert alert.alert_id == alert_id_for("s1", LOGIN, 1, str(verdict.fingerprint))
    assert alert.event_data() == {
        "alert_id": alert.alert_id,
        "account_id": "acme",
        "user_id": "u1",
        "session_id": "s1",
        "ip": "198.51.100.23",
        "assigned_location": {
            "location_id": "hq",
            "name": "Headquarters",
            "address_line": "100 Main St, Floor 3, Springfield, IL 62701, US",
        },
        "recommendation": {
            "kind": "ip_group_match",
            "locations": [
                {
                    "location_id": "home",
                    "name": "Home office",
                    "address_line": "12 Elm St, Springfield, IL 62704, US",
                }
            ],
            "total": 1,
            "truncated": False,
        },
        "matched_by": "ip",
        "checked_at": "2026-11-26T09:10:00Z",
    }


def test_all_locations_was_matched_by_no_signal() -> None:
    verdict = Verdict(
        Outcome.MISMATCH,
        assigned_location=None,
        recommendation=Recommendation(RecommendationKind.ALL_LOCATIONS, (HOME, HQ)),
    )
    data = raised_alert(REF, "192.0.2.1", LOGIN, 1, verdict, T).event_data()
    assert data["matched_by"] is None
    assert data["assigned_location"] is None
    assert data["recommendation"]["kind"] == "all_locations"


def test_the_outbox_event_carries_the_same_data_keyed_by_user() -> None:
    alert = raised_alert(REF, "198.51.100.23", LOGIN, 1, mismatch(), T)
    event = AlertStore("e911.alerts", "urn:test").raised_event(alert)
    assert (event.topic, event.key, event.partition) == ("e911.alerts", b"u1", 3)
    decoded = msgspec.json.decode(event.value)
    assert decoded["id"] == alert.alert_id
    assert decoded["type"] == "e911.alert.raised"
    assert decoded["subject"] == "s1"
    assert decoded["data"] == alert.event_data()


def test_the_resolved_event_names_the_session_as_subject_and_in_data() -> None:
    resolved = ResolvedAlert("al-1", REF, ResolveReason.DISMISSED, T)
    event = AlertStore("e911.alerts", "urn:test").resolved_event(resolved)
    assert (event.topic, event.key, event.partition) == ("e911.alerts", b"u1", 3)
    decoded = msgspec.json.decode(event.value)
    assert decoded["type"] == "e911.alert.resolved"
    assert decoded["subject"] == "s1"
    assert decoded["data"] == {
        "alert_id": "al-1",
        "account_id": "acme",
        "user_id": "u1",
        "session_id": "s1",
        "reason": "dismissed",
        "resolved_at": "2026-11-26T09:10:00Z",
    }


def test_only_a_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="only a mismatch"):
        raised_alert(REF, "198.51.100.23", LOGIN, 1, Verdict(Outcome.MATCH, HQ), T)

"""The soak's simulated world: a directory of a few hundred users, and the churn they
make at a steady rate (logins, logouts, IP and network changes, directory edits,
dismissals of the alerts they are shown).

Deterministic for a seed; the event ids and times are the only fresh values. Nothing
here does I/O: :class:`Churn` hands out ``(topic_kind, key, event)`` triples and the
runner sends them.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from e911d.daemon.commands.dev import cloud_event

SESSIONS = "sessions"
DIRECTORY = "directory"

# Where people sit. Documentation addresses only: these are data, never contacted.
PLACES = {
    "hq": "203.0.113.{n}",  # hq-lan, located at hq
    "branch": "198.51.100.{n}",  # branch-lan, located at branch
    "home": "192.0.2.{n}",  # in no group: undetermined
}
LOCATIONS = ("hq", "branch", "warehouse")
# A BSSID of the warehouse's access points: the same hq IP with this network is a
# network change that moves the session to the warehouse (signal precedence).
WAREHOUSE_BSSID = "f0:6e:0b:c2:03:21"
HQ_SWITCH = {"chassis_id": "00:1b:54:aa:bb:cc", "port_id": "Gi1/0/12"}


def directory_events(accounts: int, users: int) -> list[tuple[str, bytes]]:
    """The directory as (key, CloudEvent) pairs for the directory topic."""
    out: list[tuple[str, bytes]] = []
    address = {"street": "1 Main St", "city": "Springfield", "country": "US"}
    for a in range(accounts):
        aid = f"soak-{a}"

        def put(type_: str, data: dict[str, Any], aid: str = aid) -> None:
            out.append((aid, cloud_event(type_, {"account_id": aid, **data})))

        put("e911.account.upserted", {"e911_recommendations": True})
        for lid in LOCATIONS:
            put("e911.location.upserted", {"location_id": lid, "name": lid, "address": address})
        put(
            "e911.ip_group.upserted",
            {
                "ip_group_id": "hq-lan",
                "name": "HQ LAN",
                "location_id": "hq",
                "addresses": ["203.0.113.0/24"],
                "switches": [HQ_SWITCH],
            },
        )
        put(
            "e911.ip_group.upserted",
            {
                "ip_group_id": "branch-lan",
                "name": "Branch LAN",
                "location_id": "branch",
                "addresses": ["198.51.100.0/24"],
            },
        )
        put(
            "e911.ip_group.upserted",
            {
                "ip_group_id": "warehouse-wifi",
                "name": "Warehouse Wi-Fi",
                "location_id": "warehouse",
                "addresses": [],
                "bssids": ["f0:6e:0b:c2:03:2*"],
            },
        )
        for u in range(users):
            put(
                "e911.user.upserted",
                {
                    "user_id": user_id(a, u),
                    "e911_recommendations": u % 4 != 0,
                    "e911_location_id": LOCATIONS[u % 2],
                },
            )
    return out


def user_id(account: int, user: int) -> str:
    return f"soak-{account}-u{user}"


@dataclass(frozen=True, slots=True)
class Shown:
    """An alert a simulated user was shown: one they may dismiss."""

    account_id: str
    user_id: str
    session_id: str
    alert_id: str


@dataclass
class Churn:
    """The simulated people; :meth:`step` is one action of one of them."""

    accounts: int
    users: int
    seed: int = 911
    directory_share: float = 0.08
    dismiss_share: float = 0.04
    logout_share: float = 0.15
    rng: random.Random = field(init=False)
    # user_id -> (session_id, ip): who is logged in, and where.
    online: dict[str, tuple[str, str]] = field(default_factory=dict)
    shown: deque[Shown] = field(default_factory=lambda: deque(maxlen=500))
    counts: dict[str, int] = field(default_factory=dict)
    _sessions: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def alert_shown(self, event: dict[str, Any]) -> None:
        """An alert seen on the alerts topic: a raised one may be dismissed later."""
        data = event.get("data") or {}
        if event.get("type") == "e911.alert.raised" and isinstance(data, dict):
            try:
                self.shown.append(
                    Shown(
                        str(data["account_id"]),
                        str(data["user_id"]),
                        str(data["session_id"]),
                        str(data["alert_id"]),
                    )
                )
            except KeyError:
                return

    def step(self) -> tuple[str, str, bytes]:
        """One action: (topic kind, key, CloudEvent)."""
        roll = self.rng.random()
        if roll < self.dismiss_share and self.shown:
            return self._dismiss(self.shown.popleft())
        if roll < self.dismiss_share + self.directory_share:
            return self._directory_edit()
        a, u = self.rng.randrange(self.accounts), self.rng.randrange(self.users)
        uid = user_id(a, u)
        base = {"account_id": f"soak-{a}", "user_id": uid}
        current = self.online.get(uid)
        if current is None:
            self._sessions += 1
            sid = f"{uid}-s{self._sessions}"
            ip = self._ip()
            self.online[uid] = (sid, ip)
            return self._session("login", uid, {**base, "session_id": sid, "ip": ip})
        sid, ip = current
        roll = self.rng.random()
        if roll < self.logout_share:
            del self.online[uid]
            return self._session("logout", uid, {**base, "session_id": sid})
        if roll < 0.6:
            ip = self._ip()
            self.online[uid] = (sid, ip)
            return self._session("ip_changed", uid, {**base, "session_id": sid, "ip": ip})
        # Same IP, another network: Wi-Fi of the warehouse, a desk's switch port, none.
        network = self.rng.choice(({"bssid": WAREHOUSE_BSSID}, {"switch": HQ_SWITCH}, {}))
        data = {**base, "session_id": sid, "ip": ip, "network": network}
        return self._session("network_changed", uid, data, "ip_changed")

    def _ip(self) -> str:
        place = self.rng.choice(sorted(PLACES))
        return PLACES[place].format(n=self.rng.randrange(1, 120))

    def _session(
        self, what: str, uid: str, data: dict[str, Any], kind: str | None = None
    ) -> tuple[str, str, bytes]:
        self.counts[what] = self.counts.get(what, 0) + 1
        return SESSIONS, uid, cloud_event(f"e911.session.{kind or what}", data)

    def _dismiss(self, alert: Shown) -> tuple[str, str, bytes]:
        self.counts["dismissal"] = self.counts.get("dismissal", 0) + 1
        data = {
            "account_id": alert.account_id,
            "user_id": alert.user_id,
            "session_id": alert.session_id,
            "alert_id": alert.alert_id,
        }
        return SESSIONS, alert.user_id, cloud_event("e911.alert.dismissed", data)

    def _directory_edit(self) -> tuple[str, str, bytes]:
        """Someone moves a user's E911 location, or turns recommendations off or on."""
        self.counts["directory_edit"] = self.counts.get("directory_edit", 0) + 1
        a, u = self.rng.randrange(self.accounts), self.rng.randrange(self.users)
        aid, uid = f"soak-{a}", user_id(a, u)
        if self.rng.random() < 0.7:
            data = {
                "account_id": aid,
                "user_id": uid,
                "e911_location_id": self.rng.choice(LOCATIONS),
                "changed_via": "app",
            }
            return DIRECTORY, aid, cloud_event("e911.user.location_changed", data)
        data = {
            "account_id": aid,
            "user_id": uid,
            "e911_recommendations": self.rng.random() < 0.75,
            "e911_location_id": self.rng.choice(LOCATIONS),
        }
        return DIRECTORY, aid, cloud_event("e911.user.upserted", data)

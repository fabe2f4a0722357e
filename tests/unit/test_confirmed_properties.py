"""Properties of the confirmed-network step of a check (docs/spec.md#networks-a-user-confirmed),
against a slow reference, on the pools of :mod:`tests.unit.test_signal_properties`.

Entries are drawn from the keys sessions of those pools have (their BSSIDs, ports and
/24s), for the checked user, for a colleague in the same account with the same keys,
and for a user of the same id in another account; all of them are handed to the
evaluation together (a corrupt read), so only the checked user's own may ever decide.
The reference words the rule as the spec does: no group matched at all, then the
user's entry for the session's BSSID, else its switch port, else its IP prefix.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from e911d.daemon.core.confirmed_network import UserConfirmed
from e911d.daemon.core.evaluation import AccountDirectory, evaluate
from e911d.daemon.core.model import (
    Account,
    ConfirmedNetwork,
    MatchedBy,
    Outcome,
    RecommendationKind,
    User,
    Verdict,
)
from e911d.daemon.core.network import NetworkSignals
from e911d.daemon.core.network_key import NetworkKey, NetworkKeyKind
from tests.unit.test_signal_properties import (
    BSSIDS,
    CHASSIS,
    GEO,
    PORTS,
    PROPERTY_SETTINGS,
    AccountData,
    account_data,
    addresses,
    assigned_id,
    networks,
    reference_locate,
    settles,
)

PORT_SEP = "\x1f"


def reference_keys(
    address: ipaddress.IPv4Address, network: NetworkSignals | None
) -> list[NetworkKey]:
    """The session's keys as the spec lists them, spelled out by hand."""
    keys: list[NetworkKey] = []
    if network is not None and network.bssid is not None:
        keys.append(NetworkKey(NetworkKeyKind.BSSID, network.bssid))
    if network is not None and network.chassis_id is not None and network.port_id is not None:
        keys.append(
            NetworkKey(NetworkKeyKind.SWITCH_PORT, network.chassis_id + PORT_SEP + network.port_id)
        )
    prefix = ipaddress.IPv4Network((int(address), 24), strict=False)
    keys.append(NetworkKey(NetworkKeyKind.IP_PREFIX, str(prefix)))
    return keys


@st.composite
def pool_keys(draw: st.DrawFn, address: ipaddress.IPv4Address) -> NetworkKey:
    """A key sessions of the pools have: often the checked session's own /24."""
    kind = draw(st.sampled_from(["bssid", "port", "prefix", "own_prefix"]))
    if kind == "bssid":
        return NetworkKey(NetworkKeyKind.BSSID, draw(st.sampled_from(BSSIDS)))
    if kind == "port":
        chassis, port = draw(st.sampled_from(CHASSIS)), draw(st.sampled_from(PORTS))
        return NetworkKey(NetworkKeyKind.SWITCH_PORT, chassis + PORT_SEP + port)
    if kind == "prefix":
        third = draw(st.integers(0, 3))
        return NetworkKey(NetworkKeyKind.IP_PREFIX, f"10.0.{third}.0/24")
    return reference_keys(address, None)[-1]


@st.composite
def entries_for(
    draw: st.DrawFn, account_id: str, user_id: str, address: ipaddress.IPv4Address, pool: list[str]
) -> list[ConfirmedNetwork]:
    """A few entries, each keyed once, pointing at the pool's locations (or a gone one)."""
    keys = draw(st.lists(pool_keys(address), max_size=4, unique=True))
    targets = st.sampled_from([*pool, f"{account_id}-gone"])
    return [ConfirmedNetwork(account_id, user_id, k, draw(targets)) for k in keys]


def reference_entry(
    entries: Sequence[ConfirmedNetwork],
    me: AccountData,
    user_id: str,
    address: ipaddress.IPv4Address,
    network: NetworkSignals | None,
) -> ConfirmedNetwork | None:
    """The checked user's own entry for the first of the session's keys that has one."""
    own = {e.key: e for e in entries if e.account_id == me.account_id and e.user_id == user_id}
    for key in reference_keys(address, network):
        if key in own:
            return own[key]
    return None


def without_entries(verdict: Verdict, plain: Verdict) -> None:
    assert verdict == plain
    assert verdict.confirmed is None


@PROPERTY_SETTINGS
@given(
    mine=account_data("mine"),
    theirs=account_data("theirs"),
    address=addresses,
    data=st.data(),
    choice=st.integers(0, 20),
    with_geo=st.booleans(),
)
def test_property_a_users_own_entry_decides_only_where_no_group_matched(
    mine: AccountData,
    theirs: AccountData,
    address: ipaddress.IPv4Address,
    data: st.DataObject,
    choice: int,
    with_geo: bool,
) -> None:
    network = data.draw(networks(mine.groups))
    pool = [*mine.location_ids, *theirs.location_ids]
    own = data.draw(entries_for("mine", "u", address, pool))
    colleague = data.draw(entries_for("mine", "v", address, pool))
    namesake = data.draw(entries_for("theirs", "u", address, pool))
    everything = [*colleague, *namesake, *own]
    d = AccountDirectory("mine", mine.locations, mine.groups)
    lid = assigned_id(choice, mine, theirs)
    geo = GEO if with_geo else None
    account = Account("mine", True)
    user = User("mine", "u", True, lid)
    verdict = evaluate(
        d, account, user, address, network, geo, confirmed=UserConfirmed("mine", "u", everything)
    )
    plain = evaluate(d, account, user, address, network, geo)
    settles(verdict)

    if not mine.locations or reference_locate(mine.locations, mine.groups, address, network):
        # (a) the administrator's map (a non-locating group included) decides first.
        without_entries(verdict, plain)
        return
    expected = reference_entry(everything, mine, "u", address, network)
    if expected is None or expected.location_id not in mine.location_ids:
        # Nothing of the user's own for this network (or its location is gone).
        without_entries(verdict, plain)
        return
    # (b) the user's own entry decides, before geolocation and all_locations.
    assert verdict.confirmed == expected
    assert verdict.matched_by is MatchedBy.USER_CONFIRMED
    assert verdict.geo is None
    assert verdict.matched_ip_groups == ()
    assigned = lid if lid in mine.location_ids else None
    if assigned == expected.location_id:
        assert verdict.outcome is Outcome.MATCH
        assert verdict.recommendation is None
    else:
        assert verdict.outcome is Outcome.MISMATCH
        assert verdict.recommendation is not None
        assert verdict.recommendation.kind is RecommendationKind.USER_CONFIRMED
        assert verdict.recommendation.matched_by is MatchedBy.USER_CONFIRMED
        assert [loc.location_id for loc in verdict.recommendation.locations] == [
            expected.location_id
        ]


@PROPERTY_SETTINGS
@given(
    mine=account_data("mine"),
    theirs=account_data("theirs"),
    address=addresses,
    data=st.data(),
    choice=st.integers(0, 20),
)
def test_property_no_user_ever_gets_another_users_or_accounts_entry(
    mine: AccountData,
    theirs: AccountData,
    address: ipaddress.IPv4Address,
    data: st.DataObject,
    choice: int,
) -> None:
    """A colleague on the same network, and a namesake in another account, are checked
    with the first user's entries handed in (for them, and mixed into theirs): they
    get exactly what they would get if no one had confirmed anything."""
    network = data.draw(networks((*mine.groups, *theirs.groups)))
    pool = [*mine.location_ids, *theirs.location_ids]
    first = data.draw(entries_for("mine", "u", address, pool))
    lid = assigned_id(choice, mine, theirs)
    for me, user_id in ((mine, "v"), (theirs, "u")):
        d = AccountDirectory(me.account_id, me.locations, me.groups)
        user = User(me.account_id, user_id, True, lid)
        account = Account(me.account_id, True)
        plain = evaluate(d, account, user, address, network, None)
        # The first user's entries, as if read for this user ...
        as_first = UserConfirmed("mine", "u", first)
        without_entries(evaluate(d, account, user, address, network, confirmed=as_first), plain)
        # ... and mixed into this user's own (empty) set.
        mixed = UserConfirmed(me.account_id, user_id, first)
        without_entries(evaluate(d, account, user, address, network, confirmed=mixed), plain)

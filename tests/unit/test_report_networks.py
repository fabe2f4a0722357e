"""``e911d report networks``, its pure parts (daemon/commands/networks/): agreement,
the order, which networks a directory file suggests, the generated groups, and the
formats."""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
from dataclasses import replace

import pytest
import yaml

from e911d.daemon.commands.directory_file.validation import validate
from e911d.daemon.commands.networks.agreement import (
    Confirmation,
    NetworkReport,
    NetworkRow,
    NetworksReport,
    agreement_of,
    build_network,
    busiest_first,
)
from e911d.daemon.commands.networks.recorded import located_by
from e911d.daemon.commands.networks.render import CSV_COLUMNS, render_csv, render_json, render_text
from e911d.daemon.commands.networks.suggestions import (
    MAX_ID,
    group_doc,
    group_id,
    render_directory,
    suggested_document,
)
from e911d.daemon.core.evaluation import AccountDirectory
from e911d.daemon.core.model import IpGroup, Location
from e911d.daemon.core.network import SwitchRef
from e911d.daemon.core.network_key import NetworkKey, bssid_key, ip_prefix_key, switch_port_key

DAY = dt.date(2026, 11, 30)
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
PREFIX = ip_prefix_key(ipaddress.ip_address("192.0.2.7"))
AP = bssid_key("f06e0bc20321")
PORT = switch_port_key("001b54aabbcc", "gi1/0/12")


def _row(key: NetworkKey, users: int = 3, sessions: int = 4, account: str = "acme") -> NetworkRow:
    return NetworkRow(account, key, users, sessions, 2, DAY, DAY + dt.timedelta(days=1))


def _c(location: str, users: int, name: str | None = "Name") -> Confirmation:
    return Confirmation(location, name, users)


def _report(*networks: NetworkReport, agreement: float = 0.8) -> NetworksReport:
    return NetworksReport(NOW, DAY, DAY + dt.timedelta(days=1), 1, agreement, networks)


def test_agreement_is_the_share_of_the_most_chosen_location() -> None:
    assert agreement_of([_c("hq", 4), _c("home", 1)]) == pytest.approx(0.8)
    assert agreement_of([_c("hq", 1), _c("home", 1)]) == pytest.approx(0.5)
    assert agreement_of([_c("hq", 2)]) == 1.0
    assert agreement_of([]) is None


def test_confirmations_list_the_most_chosen_first_with_their_share() -> None:
    n = build_network(_row(PREFIX), [_c("b", 1), _c("a", 1), _c("hq", 3)])
    assert [c.location_id for c in n.confirmations] == ["hq", "a", "b"]
    assert n.confirmed_users == 5
    assert n.share(n.confirmations[0]) == pytest.approx(0.6)
    assert n.agreement == pytest.approx(0.6)


def test_busiest_first_by_users_then_sessions() -> None:
    quiet = build_network(_row(AP, users=1, sessions=9))
    busy = build_network(_row(PREFIX, users=5, sessions=5))
    busier = build_network(_row(PORT, users=5, sessions=6))
    assert busiest_first([quiet, busy, busier]) == [busier, busy, quiet]


def test_only_an_agreement_at_the_threshold_suggests_a_group() -> None:
    agreed = build_network(_row(PREFIX), [_c("hq", 4), _c("home", 1)])
    assert agreed.suggests(0.8) == _c("hq", 4)
    assert agreed.suggests(0.81) is None
    assert build_network(_row(PREFIX)).suggests(0.8) is None  # nobody confirmed
    gone = build_network(_row(PREFIX), [_c("hq", 4, name=None)])
    assert gone.suggests(0.8) is None  # the location was deleted


def test_generated_groups_carry_the_network_as_its_own_signal() -> None:
    assert group_doc(build_network(_row(PREFIX)), "hq") == {
        "ip_group_id": "suggested-ip-192.0.2.0-24",
        "name": "Suggested by e911d report networks: 192.0.2.0/24",
        "location_id": "hq",
        "addresses": ["192.0.2.0/24"],
    }
    ap = group_doc(build_network(_row(AP)), "hq")
    assert ap["ip_group_id"] == "suggested-bssid-f0:6e:0b:c2:03:21"
    assert (ap["addresses"], ap["bssids"]) == ([], ["f0:6e:0b:c2:03:21"])
    port = group_doc(build_network(_row(PORT)), "hq")
    assert port["ip_group_id"] == "suggested-port-00:1b:54:aa:bb:cc-gi1/0/12"
    assert port["switches"] == [{"chassis_id": "00:1b:54:aa:bb:cc", "port_id": "gi1/0/12"}]


def test_a_long_switch_key_still_gives_a_valid_deterministic_id() -> None:
    key = switch_port_key("c" * 256, "p" * 256)
    gid = group_id(key)
    assert len(gid) <= MAX_ID
    assert gid == group_id(switch_port_key("c" * 256, "p" * 256))
    assert gid != group_id(switch_port_key("c" * 256, "q" * 256))


def test_the_suggested_file_validates_and_repeats_the_account_toggle() -> None:
    report = _report(
        build_network(_row(PREFIX), [_c("hq", 4), _c("home", 1)]),
        build_network(_row(AP), [_c("home", 2)]),
        build_network(_row(PORT), [_c("hq", 1), _c("home", 1)]),  # no agreement
        build_network(_row(PREFIX, account="gone"), [_c("hq", 3)]),  # not in the directory
    )
    document = suggested_document(report, {"acme": True})
    [acme] = document["accounts"]
    assert acme["account_id"] == "acme"
    assert acme["e911_recommendations"] is True
    assert [(g["ip_group_id"], g["location_id"]) for g in acme["ip_groups"]] == [
        ("suggested-bssid-f0:6e:0b:c2:03:21", "home"),
        ("suggested-ip-192.0.2.0-24", "hq"),
    ]
    text = render_directory(report, {"acme": True})
    assert text.startswith("# IP groups suggested by")
    parsed = yaml.safe_load(text)
    assert parsed == document
    # The file is one `directory import` validates (locations exist in the database).
    validated = validate(parsed, db_locations={"acme": {"hq", "home"}})
    assert validated.issues == ()
    assert validated.directory is not None


def test_a_network_a_group_now_matches_is_configured_since() -> None:
    directory = AccountDirectory(
        "acme",
        (Location("hq", "HQ"),),
        (
            IpGroup("g", "G", "hq", (ipaddress.ip_network("192.0.2.128/25"),)),
            IpGroup("w", "W", "hq", (), bssids=("f06e0bc20321",)),
            IpGroup("s", "S", "hq", (), switches=(SwitchRef("001b54aabbcc", None),)),
        ),
    )
    assert located_by(directory, PREFIX)  # part of the /24 is configured
    assert located_by(directory, AP)
    assert located_by(directory, PORT)  # the whole switch
    assert not located_by(directory, ip_prefix_key(ipaddress.ip_address("198.51.100.1")))
    configured = build_network(_row(PREFIX), [_c("hq", 5)])
    assert replace(configured, configured_now=True).suggests(0.8) is None


def test_text_json_and_csv_show_the_same_figures() -> None:
    report = _report(
        build_network(_row(PREFIX, users=3, sessions=4), [_c("hq", 4, "HQ"), _c("home", 1)])
    )
    text = render_text(report)
    assert "Account acme" in text
    assert "192.0.2.0/24  (ip_prefix)  users 3  sessions 4  days 2" in text
    assert "confirmed: hq (HQ) 4/5 80%, home (Name) 1/5 20%  agreement 80%" in text
    data = json.loads(render_json(report))
    [n] = data["networks"]
    assert (n["network"], n["users"], n["sessions"], n["agreement"]) == ("192.0.2.0/24", 3, 4, 0.8)
    assert n["confirmations"][0] == {"location_id": "hq", "name": "HQ", "users": 4, "share": 0.8}
    rows = list(csv.reader(io.StringIO(render_csv(report))))
    assert rows[0] == list(CSV_COLUMNS)
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["network"], row["agreement"], row["confirmations"]) == (
        "192.0.2.0/24",
        "0.8",
        "hq=4; home=1",
    )
    assert "(no networks)" in render_text(_report())

"""Every common spelling of a MAC address, a BSSID pattern and a switch port normalises
to one value (docs/spec.md#network-signals): an access point that matches in the console must match
in a
check, whatever the controller, the switch or the client's OS wrote."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from e911d.daemon.core.network import (
    BadMac,
    NetworkSignals,
    bssid_candidates,
    format_bssid,
    format_chassis_id,
    normalize_bssid_pattern,
    normalize_chassis_id,
    normalize_mac,
    normalize_port_id,
)

MAC = "f06e0bc20321"


@pytest.mark.parametrize(
    "spelling",
    [
        "f0:6e:0b:c2:03:21",  # colon (Linux, Wireshark)
        "F0:6E:0B:C2:03:21",  # upper case
        "f0-6e-0b-c2-03-21",  # dash (Windows)
        "F0-6E-0B-C2-03-21",
        "f06e.0bc2.0321",  # Cisco dotted
        "F06E.0BC2.0321",
        "f06e0bc20321",  # bare (controllers, APIs)
        "F06E0BC20321",
        "f0:6e:b:c2:3:21",  # macOS drops leading zeros
        "f0-6e-b-c2-3-21",
        "  f0:6e:0b:c2:03:21\t",  # edge whitespace from a spreadsheet
    ],
)
def test_every_common_mac_spelling_normalises_to_twelve_lowercase_hex_digits(
    spelling: str,
) -> None:
    assert normalize_mac(spelling) == MAC
    assert normalize_bssid_pattern(spelling) == MAC
    assert normalize_chassis_id(spelling) == MAC


@pytest.mark.parametrize(
    "spelling",
    [
        "f0:6e:0b:c2:03:2*",
        "F0:6E:0B:C2:03:2*",
        "f0-6e-0b-c2-03-2*",
        "f06e.0bc2.032*",
        "f06e0bc2032*",
        "f0:6e:b:c2:3:2*",
        " f06e0bc2032*\t",  # edge whitespace, as a plain MAC allows
    ],
)
def test_a_wildcard_replaces_the_last_hex_digit_in_any_spelling(spelling: str) -> None:
    assert normalize_bssid_pattern(spelling) == "f06e0bc2032*"
    # The pattern matches every BSSID that differs in that digit, after the exact one.
    for last in "0123456789abcdef":
        assert bssid_candidates("f06e0bc2032" + last) == ("f06e0bc2032" + last, "f06e0bc2032*")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "is not a MAC address"),
        ("f0:6e:0b:c2:03", "is not a MAC address"),  # five octets
        ("f0:6e:0b:c2:03:21:00", "is not a MAC address"),  # seven
        ("f0:6e:0b:c2:03:211", "is not a MAC address"),  # a three-digit octet
        ("f0:6e:0b:c2::21", "is not a MAC address"),  # an empty octet
        ("g0:6e:0b:c2:03:21", "is not a MAC address"),  # not hex
        ("f0:6e-0b:c2-03:21", "is not a MAC address"),  # mixed separators
        ("f06e.0bc2.03210", "is not a MAC address"),  # a five-digit dotted group
        ("f06e0bc2032", "is not a MAC address"),  # eleven bare digits
        ("f06e0bc203210", "is not a MAC address"),  # thirteen
        ("x" * 200, "is not a MAC address"),  # long input, message stays short
    ],
)
def test_refused_mac_addresses_say_what_was_wrong(text: str, says: str) -> None:
    with pytest.raises(BadMac, match=says) as caught:
        normalize_mac(text)
    assert len(str(caught.value)) < 160
    with pytest.raises(BadMac):
        normalize_bssid_pattern(text)


@pytest.mark.parametrize(
    "pattern",
    [
        "f0:6e:0b:c2:03:*",  # would stand for a whole octet
        "f0:6e:0b:c2:*",  # a wider wildcard: a whole vendor's range
        "f06e0bc203*",  # ten digits and a star
        "f0:6e:0b:c2:0*:21",  # a star in the middle
        "f06e0bc2032**",
        "*",
        "f0:6e:b:c2:3:*",  # macOS spelling of a one-octet wildcard
    ],
)
def test_refused_patterns_say_the_star_may_only_replace_the_last_hex_digit(pattern: str) -> None:
    with pytest.raises(BadMac, match="'\\*' may only replace the last hex digit"):
        normalize_bssid_pattern(pattern)
    # A session never carries a pattern: a plain MAC refuses it.
    with pytest.raises(BadMac, match="is not a MAC address"):
        normalize_mac(pattern)


@pytest.mark.parametrize("not_text", [None, 42, b"f0:6e:0b:c2:03:21"])
def test_non_text_is_refused_not_crashed_on(not_text: object) -> None:
    with pytest.raises(BadMac, match="is not a MAC address"):
        normalize_mac(not_text)  # type: ignore[arg-type]
    with pytest.raises(BadMac):
        normalize_bssid_pattern(not_text)  # type: ignore[arg-type]


def test_a_chassis_id_that_is_no_mac_is_compared_case_insensitively() -> None:
    # LLDP chassis ids may be names or network addresses.
    assert normalize_chassis_id("  Core-SW-1 ") == "core-sw-1"
    assert normalize_chassis_id("10.0.0.1") == "10.0.0.1"
    assert normalize_chassis_id("STRASSE") == normalize_chassis_id("straße")  # casefold
    assert format_chassis_id("core-sw-1") == "core-sw-1"
    assert format_chassis_id(normalize_chassis_id("F0-6E-0B-C2-03-21")) == "f0:6e:0b:c2:03:21"


@pytest.mark.parametrize("spelling", ["Gi1/0/12", "gi1/0/12", " GI1/0/12 ", "gI1/0/12\n"])
def test_port_ids_are_compared_case_insensitively_without_edge_spaces(spelling: str) -> None:
    assert normalize_port_id(spelling) == "gi1/0/12"


def test_output_spelling_is_colon_separated() -> None:
    assert format_bssid(MAC) == "f0:6e:0b:c2:03:21"
    assert format_bssid("f06e0bc2032*") == "f0:6e:0b:c2:03:2*"


def test_network_signals_are_empty_only_without_bssid_and_switch() -> None:
    assert NetworkSignals().empty
    assert not NetworkSignals(bssid=MAC).empty
    assert not NetworkSignals(chassis_id="core-sw-1").empty
    # A port alone names no switch: nothing to locate by.
    assert NetworkSignals(port_id="gi1/0/1").empty


_octet = st.integers(0, 255)


@settings(deadline=None)  # a busy machine (two workers) can stall an example past 200 ms
@given(st.lists(_octet, min_size=6, max_size=6), st.sampled_from(["colon", "dash", "dot", "bare"]))
def test_property_every_spelling_of_one_address_gives_the_same_value(
    octets: list[int], style: str
) -> None:
    digits = "".join(f"{o:02x}" for o in octets)
    spelled = {
        "colon": ":".join(f"{o:x}" for o in octets),  # macOS: no leading zeros
        "dash": "-".join(f"{o:02X}" for o in octets),
        "dot": ".".join(digits[i : i + 4] for i in range(0, 12, 4)),
        "bare": digits.upper(),
    }[style]
    assert normalize_mac(spelled) == digits
    assert normalize_mac(format_bssid(digits)) == digits  # what export writes reads back
    pattern = spelled[:-1] + "*"
    if style == "colon" and octets[-1] < 16:
        # "…:3:*" (macOS, last octet 03): the star would stand for a whole octet.
        with pytest.raises(BadMac, match="last hex digit"):
            normalize_bssid_pattern(pattern)
    else:
        assert normalize_bssid_pattern(pattern) == digits[:11] + "*"

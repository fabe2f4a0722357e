"""Dispatchable addresses (docs/spec.md#dispatchable-addresses): the stored form of an
address, its one-line form for alerts, and what lint compares.

A dispatcher needs the civic address and where inside the building the caller is. An
app showing an alert needs both on one line, without another look-up, so every
location an alert names carries :func:`address_line` of its address.

Pure: the stored form is a plain dict (the ``locations.address`` jsonb), which another
system's SQL may have written in any shape, so nothing here trusts its types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import msgspec

from e911d.daemon.core.events import Address

# The fields that place a building (docs/spec.md#dispatchable-addresses), in the order
# a finding names them.
CIVIC_FIELDS: Final = ("street", "city", "region", "postal_code", "country")
# The fields that tell places inside one building apart, with the word put in front
# of a bare value (see :func:`_detail`).
DETAIL_FIELDS: Final = (("building", "Building"), ("floor", "Floor"), ("unit", "Unit"))
_SPACES: Final = re.compile(r"\s+")
_DIGIT: Final = re.compile(r"\d")
# A bare value of at most this many characters gets its label: "B" -> "Building B".
_SHORT: Final = 3


def address_doc(address: Address) -> dict[str, str]:
    """The address as it is stored (jsonb) and compared: ``building``, ``floor`` and
    ``unit`` only when given, so an address without them is stored exactly as before
    they existed (and an import of an unchanged file changes nothing)."""
    doc: dict[str, str] = msgspec.to_builtins(address)
    for name, _ in DETAIL_FIELDS:
        if not doc.get(name):
            doc.pop(name, None)
    return doc


def _text(doc: Mapping[str, object], name: str) -> str:
    """A field's value on one line: runs of white space (a tab, a newline a name may
    hold) become one space. Anything that is not a string counts as not given."""
    value = doc.get(name)
    return _SPACES.sub(" ", value).strip() if isinstance(value, str) else ""


def _detail(value: str, label: str) -> str:
    """A bare value gets its label ("3" -> "Floor 3", "B" -> "Building B", "2A" ->
    "Unit 2A"): a single word that starts with a digit or is at most three characters
    long. Anything else is already worded ("Suite 301", "Ground floor", "East wing",
    "Penthouse") and is written as given."""
    if " " in value or (len(value) > _SHORT and not value[0].isdigit()):
        return value
    return f"{label} {value}"


def address_line(doc: object) -> str:
    """The dispatchable address on one line, in the order an envelope is written:

    street, building, floor, unit, city, "region postal_code", country

    ("100 Main St, Building 2, Floor 3, Suite 301, Springfield, IL 62701, US"). Fields
    not given are left out with their comma; an address that is not a mapping (a row
    another system wrote) gives "".
    """
    if not isinstance(doc, Mapping):
        return ""
    parts = [_text(doc, "street")]
    for name, label in DETAIL_FIELDS:
        value = _text(doc, name)
        parts.append(_detail(value, label) if value else "")
    parts.append(_text(doc, "city"))
    parts.append(" ".join(p for p in (_text(doc, "region"), _text(doc, "postal_code")) if p))
    parts.append(_text(doc, "country"))
    return ", ".join(p for p in parts if p)


def missing_civic_fields(address: Address) -> list[str]:
    """The required civic fields the address lacks, in :data:`CIVIC_FIELDS` order.

    A street without a house number ("Main Street") does not say which building:
    it counts as missing.
    """
    doc = msgspec.to_builtins(address)
    missing = [name for name in CIVIC_FIELDS if not _text(doc, name)]
    if "street" not in missing and not _DIGIT.search(address.street):
        missing.insert(0, "street")
    return missing


def place_key(address: Address) -> tuple[str, ...]:
    """What makes two addresses the same place: every civic and detail field, compared
    without regard to case or spacing ("100 Main St" is "100  main st")."""
    doc = msgspec.to_builtins(address)
    names = (*CIVIC_FIELDS, *(name for name, _ in DETAIL_FIELDS))
    return tuple(_text(doc, name).casefold() for name in names)

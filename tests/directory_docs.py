"""Builders of directory-file entities (the import's format), for tests that write a
directory document by hand."""

from __future__ import annotations

from typing import Any

ADDRESS = {
    "street": "1 Main St",
    "city": "Springfield",
    "region": "IL",
    "postal_code": "62701",
    "country": "US",
}


def loc(location_id: str, **address: str) -> dict[str, Any]:
    """A location with a complete address of its own: its unit is its id (so no two
    share one), unless ``address`` says otherwise."""
    return {
        "location_id": location_id,
        "name": location_id.upper(),
        "address": {**ADDRESS, "unit": location_id, **address},
    }


def group(
    ip_group_id: str, location_id: str | None, *addresses: str, **extra: Any
) -> dict[str, Any]:
    return {
        "ip_group_id": ip_group_id,
        "name": ip_group_id,
        "location_id": location_id,
        "addresses": list(addresses),
        **extra,
    }


def user(user_id: str, location_id: str | None, on: bool = False) -> dict[str, Any]:
    return {"user_id": user_id, "e911_recommendations": on, "e911_location_id": location_id}

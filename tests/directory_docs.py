"""Builders of directory-file entities (the import's format), for tests that write a
directory document by hand."""

from __future__ import annotations

from typing import Any

ADDRESS = {"street": "1 Main St", "city": "Springfield", "country": "US"}


def loc(location_id: str) -> dict[str, Any]:
    return {"location_id": location_id, "name": location_id.upper(), "address": ADDRESS}


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

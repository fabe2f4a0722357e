"""The mixes of messages the tests draw from, and the check that a sample covers them.

``missing_categories`` keeps the generators honest: a change that stops producing a
kind of hostile input the issue asks for fails a test instead of passing quietly.
"""

from __future__ import annotations

from typing import Final

from hypothesis import strategies as st

from tests.strategies.big import big_messages
from tests.strategies.body_faults import faulty_messages
from tests.strategies.byte_faults import byte_faulty_messages
from tests.strategies.encoding import good_messages
from tests.strategies.tags import DIRECTORY, MAX_EVENT_BYTES, SESSION, Tagged


def bad_messages(topic: str, max_bytes: int = MAX_EVENT_BYTES) -> st.SearchStrategy[Tagged]:
    """Bad messages of modest size (oversized ones only by accident)."""
    return st.one_of(faulty_messages(topic, max_bytes), byte_faulty_messages(topic, max_bytes))


def messages(
    topic: str, max_bytes: int = MAX_EVENT_BYTES, *, big: bool = True
) -> st.SearchStrategy[Tagged]:
    """Any tagged message of a topic: good, bad, and (``big``) at or over the size limit."""
    parts = [good_messages(topic, max_bytes), bad_messages(topic, max_bytes)]
    if big:
        parts.append(big_messages(topic, max_bytes))
    return st.one_of(parts)


def all_messages(max_bytes: int = MAX_EVENT_BYTES) -> st.SearchStrategy[Tagged]:
    return st.one_of(messages(SESSION, max_bytes), messages(DIRECTORY, max_bytes))


# Every category of hostile input the issue asks for, and the category labels (prefix
# matches) that show it was generated; see ``missing_categories``.
REQUIRED_CATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "wrong JSON types": ("wrong_type", "not_object", "not_list"),
    "missing fields": ("missing_",),
    "huge strings": ("huge_id", "huge_name", "too_long"),
    "oversized": ("oversized",),
    "nested garbage": ("deep_nesting", "deep_top_level"),
    "invalid UTF-8": ("invalid_utf8", "lone_surrogate", "utf16"),
    "non-JSON": ("non_json", "truncated", "trailing_garbage"),
    "JSON not an object": ("not_an_object",),
    "not CloudEvents": ("not_a_cloudevent", "bad_specversion", "missing_specversion"),
    "unknown types": ("unknown_type",),
    "bad times": ("time",),
    "control characters": ("control_char",),
    "invalid IPs": ("invalid_ip",),
    "invalid address items": ("invalid_address_item",),
    "null value": ("none",),
}


def missing_categories(sample: list[Tagged]) -> set[str]:
    """The required categories of which ``sample`` has no example."""
    words = {part for t in sample for part in _category_words(t.category)}
    return {
        name
        for name, needles in REQUIRED_CATEGORIES.items()
        if not any(needle in word for word in words for needle in needles)
    }


def _category_words(category: str) -> list[str]:
    return [w for part in category.split(":") for w in part.split("+")]

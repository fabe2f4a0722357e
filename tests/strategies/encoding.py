"""Good events as bytes, in one of many legal JSON layouts, and the size limit.

``_sized`` is the one place that decides, for every family of messages, that anything
beyond the size limit is oversized whatever else is wrong with it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.strategies.good_events import good_built
from tests.strategies.tags import MAX_EVENT_BYTES, Bad, Good, R, Tagged, _bad


@dataclass(frozen=True, slots=True)
class Style:
    ensure_ascii: bool
    layout: str  # compact, spaced, indented, tabbed
    trailing: str  # whitespace after the object (legal JSON)

    def dumps(self, body: Any) -> bytes:
        kwargs: dict[str, Any] = {"ensure_ascii": self.ensure_ascii}
        if self.layout == "compact":
            kwargs["separators"] = (",", ":")
        elif self.layout == "indented":
            kwargs["indent"] = 2
        elif self.layout == "tabbed":
            kwargs["indent"] = "\t"
        return (json.dumps(body, **kwargs) + self.trailing).encode("utf-8")


styles = st.builds(
    Style,
    st.booleans(),
    st.sampled_from(["compact", "spaced", "indented", "tabbed"]),
    st.sampled_from(["", "", "", "\n", " \r\n\t "]),
)


def _sized(
    topic: str, key: str, value: bytes, expect: Good | Bad, category: str, max_bytes: int
) -> Tagged:
    """Anything beyond the size limit is oversized, whatever else is wrong with it."""
    if len(value) > max_bytes:
        return Tagged(topic, key, value, Bad(_bad(R.OVERSIZED)), category + "+oversized")
    return Tagged(topic, key, value, expect, category)


@st.composite
def good_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    built = draw(good_built(topic))
    value = draw(styles).dumps(built.body)
    return _sized(
        topic, built.key, value, Good(built.event), f"good:{topic}:{built.label}", max_bytes
    )

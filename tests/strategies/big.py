"""Messages exactly at the size limit (good) or beyond it (oversized, whatever else).

A family of their own: each is as big as the limit or bigger, so tests draw few of them.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.strategies.body_faults import faulty_messages
from tests.strategies.encoding import Style, _sized, styles
from tests.strategies.good_events import good_built
from tests.strategies.tags import MAX_EVENT_BYTES, Bad, Good, R, Tagged, _bad


def _padded(style: Style, body: dict[str, Any], size: int) -> bytes:
    """The body with an extra attribute that makes it exactly ``size`` bytes (if it can)."""
    padded = {**body, "zz_padding": ""}
    need = size - len(style.dumps(padded))
    padded["zz_padding"] = "p" * max(0, need)
    return style.dumps(padded)


@st.composite
def big_messages(draw: st.DrawFn, topic: str, max_bytes: int = MAX_EVENT_BYTES) -> Tagged:
    """Exactly at the limit (good) or beyond it (oversized), whatever the content."""
    family = draw(st.sampled_from(["at_limit", "over_good", "over_bad", "over_garbage"]))
    style = draw(styles)
    if family == "over_garbage":
        size = max_bytes + draw(st.integers(1, 4096))
        chunk = draw(st.binary(min_size=1, max_size=16))
        value = (chunk * (size // len(chunk) + 1))[:size]
        return Tagged(topic, "k0", value, Bad(_bad(R.OVERSIZED)), f"bad:{topic}:oversized_garbage")
    if family == "over_bad":
        bad = draw(faulty_messages(topic, max_bytes))
        assert bad.value is not None
        body_text = bad.value
        pad = b" " * (max_bytes + draw(st.integers(1, 2048)) - len(body_text))
        return Tagged(
            topic, bad.key, body_text + pad, Bad(_bad(R.OVERSIZED)), bad.category + "+oversized"
        )
    built = draw(good_built(topic))
    if family == "at_limit":
        value = _padded(style, built.body, max_bytes)
        if len(value) == max_bytes:
            return Tagged(topic, built.key, value, Good(built.event), f"good:{topic}:at_size_limit")
    value = _padded(style, built.body, max_bytes + draw(st.integers(1, 4096)))
    return _sized(
        topic, built.key, value, Bad(_bad(R.OVERSIZED)), f"bad:{topic}:oversized", max_bytes
    )

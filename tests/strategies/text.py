"""Hostile but legal text for ids and names, and arbitrary JSON for ignored places.

Ids from ``unique_ids`` embed a process-wide serial number, so that no two good events
of a run touch the same session or directory entity (their effects are checked one by
one). The character sets are shared with the faults, which break exactly these rules.
"""

from __future__ import annotations

import itertools
from typing import Any, Final

from hypothesis import strategies as st

_C0: Final = "".join(chr(c) for c in range(0x20)) + "\x7f"  # refused in ids
_NAME_REFUSED: Final = "".join(c for c in _C0 if c not in "\t\n")  # names allow tab, newline
_ID_CHARS = st.characters(codec="utf-8", exclude_characters=_C0)
_NAME_CHARS = st.characters(codec="utf-8", exclude_characters=_NAME_REFUSED)
_ANY_CHARS = st.characters(codec="utf-8")
# Legal in ids and names, and unpleasant in logs, SQL and terminals.
HOSTILE_TEXT: Final = (
    "\u202eevil-rtl",
    "zero\u200bwidth",
    "\ufeffbom",
    "\uffff\ufffe",
    "\U0010ffff",
    "c1\x85\x9bcontrol",
    "nbsp\u00a0",
    'quote"back\\slash',
    "'; DROP TABLE sessions; --",
    "%s%n{0}${x}",
    "\U0001f600\U0001f469\u200d\U0001f467",
    "\u03a9\u2248\u00e7\u221a",
    "\u0645\u0631\u062d\u0628\u0627",
    "e\u0301\u0301\u0301",
)
_SERIAL = itertools.count()

free_ids = st.one_of(st.text(_ID_CHARS, min_size=1, max_size=8), st.sampled_from(HOSTILE_TEXT))
names = st.one_of(st.text(_NAME_CHARS, max_size=10), st.sampled_from(HOSTILE_TEXT))
nonempty_names = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=10), st.sampled_from(HOSTILE_TEXT)
)


@st.composite
def unique_ids(draw: st.DrawFn, tag: str) -> str:
    """A legal id no other example of this process has: hostile text + a serial."""
    serial = f"#{tag}{next(_SERIAL)}"
    head = draw(free_ids)
    if draw(st.integers(0, 5)) == 0:  # exactly the maximum length (256 characters)
        fill = draw(_ID_CHARS)
        head = (head + fill * 256)[: 256 - len(serial)]
    return head[: 256 - len(serial)] + serial


@st.composite
def _long_text(draw: st.DrawFn, min_size: int, max_size: int) -> str:
    """A long string, cheaply: a drawn chunk repeated to a drawn length (in characters).

    Non-ASCII ones stay short enough that, escaped as ``\\uXXXX``, they rarely pass
    the size limit (oversized messages are drawn on purpose by ``big_messages``).
    """
    chunk = draw(st.sampled_from(["x", "x", "ab", "\u00e9", "\U0001f600"]))
    limit = max_size if chunk.isascii() else max(min_size, min(max_size, 2_000))
    n = draw(st.integers(min_size, limit))
    return (chunk * n)[:n]


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(_ANY_CHARS, max_size=10),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(_ANY_CHARS, max_size=6), children, max_size=4),
    ),
    max_leaves=8,
)
non_string_json = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(json_scalars, max_size=3),
    st.dictionaries(st.text(max_size=5), json_scalars, max_size=3),
)


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"n": value}
    return value


moderately_nested = st.integers(1, 40).map(_nested)  # legal in ignored places

"""mask_dsn hides every password whole, in both libpq forms (e.g. `u:p@ss@db` and
`password='s e c'` used to leak part of the secret)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from e911d.config import mask_dsn


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://u:p@ss@db/x", "postgresql://u:***@db/x"),
        (
            "postgresql://u:p:a/s%s w@rd@db:5432/x?sslmode=verify-full",
            "postgresql://u:***@db:5432/x?sslmode=verify-full",
        ),
        ("postgres://:s3cr3t@h/db", "postgres://:***@h/db"),
        ("postgresql://u@h:5432/db", "postgresql://u@h:5432/db"),
        ("postgresql://h/db", "postgresql://h/db"),
        (
            "postgresql://u@h/db?password=s3cr3t&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        (
            "postgresql://h/db?sslpassword=k3y&application_name=a@b",
            "postgresql://h/db?sslpassword=***&application_name=a@b",
        ),
        (
            "postgresql://svc:pw@db/x?application_name=me@host",
            "postgresql://svc:***@db/x?application_name=me@host",
        ),
        ("postgresql://u:a?b@c@db/x", "postgresql://u:***@db/x"),
        ("host=h user=u password=sec dbname=x", "host=h user=u password=*** dbname=x"),
        ("host=h password='s e c' dbname=x", "host=h password=*** dbname=x"),
        ("host=h password = 's \\' e\\\\c' dbname=x", "host=h password = *** dbname=x"),
        ("password=a\\ b host=h", "password=*** host=h"),
        ("host=h sslpassword='k y' user=u", "host=h sslpassword=*** user=u"),
        ("host=h user=u", "host=h user=u"),
        ("host=h password='unterminated dbname=x", "host=h password=*** (unparsable)"),
        ("", ""),
    ],
)
def test_known_forms(dsn: str, masked: str) -> None:
    assert mask_dsn(dsn) == masked


# Any printable text, odd characters included; '?' and '#' end a URI's authority in
# every parser (libpq's too), so an unencoded one is a malformed URI, not a password.
URI_SECRET = st.text(
    st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_characters="?#"),
    min_size=3,
)
# In a query string '&' separates parameters: libpq ends the value there as well.
QUERY_SECRET = st.text(
    st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters="&#"),
    min_size=3,
)
# Keyword/value: anything; it is written as libpq wants it quoted.
KEYWORD_SECRET = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=3)


@settings(deadline=None)  # a busy machine (two workers) can stall an example past 200 ms
@given(URI_SECRET, st.sampled_from(["", "?sslmode=require", "?application_name=a@b"]))
def test_a_uri_password_never_shows(secret: str, query: str) -> None:
    assume(secret not in f"postgresql://svc:***@db.example:5432/e911d{query}")
    masked = mask_dsn(f"postgresql://svc:{secret}@db.example:5432/e911d{query}")
    assert secret not in masked
    assert masked.endswith(f"@db.example:5432/e911d{query}")


@settings(deadline=None)  # a busy machine (two workers) can stall an example past 200 ms
@given(QUERY_SECRET)
def test_a_query_password_never_shows(secret: str) -> None:
    template = "postgresql://u@db/x?sslmode=require&password={}&application_name=e911d"
    assume(secret not in template.format("***"))
    assert secret not in mask_dsn(template.format(secret))


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _escape(value: str) -> str:
    return "".join("\\" + c if c in "\\' \t\n\v\f\r" else c for c in value)


@settings(deadline=None)  # a busy machine (two workers) can stall an example past 200 ms
@given(KEYWORD_SECRET, st.sampled_from([_quote, _escape]), st.sampled_from(["=", " = "]))
def test_a_keyword_password_never_shows(
    secret: str, write: Callable[[str], str], equals: str
) -> None:
    assume(secret not in mask_dsn("host=db user=svc password=x dbname=e911d"))
    masked = mask_dsn(f"host=db user=svc password{equals}{write(secret)} dbname=e911d")
    assert secret not in masked
    assert masked.endswith(" dbname=e911d")

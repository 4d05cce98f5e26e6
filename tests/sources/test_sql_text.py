"""The short ways of the shared macros (sources/sql_text.py) give what the general ways give.

`field_text`, `money` and `utc_timestamp` pass or cast the commonest shapes of a field directly, and
send everything else the general way (`trim`, `sql_text_any_money`, `sql_text_any_timestamp`). Each is
compared here with the general way on the same texts: hand-picked edges and generated ones.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costlake.sources import sql_text


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    sql_text.install_macros(con)
    yield con
    con.close()


def _differ(con: duckdb.DuckDBPyConnection, texts: list[str | None], short: str, general: str) -> list:
    """The texts on which the expressions `short` and `general` of `t` differ, with both results."""
    con.register("texts", pa.table({"t": pa.array(texts, pa.string())}))
    try:
        sql = f"SELECT t, {short} AS a, {general} AS b FROM texts WHERE a IS DISTINCT FROM b"
        return con.execute(sql).fetchall()
    finally:
        con.unregister("texts")


SPACES = [" ", "\u00a0", "\u1680", "\u2000", "\u200a", "\u202f", "\u205f", "\u3000", "\t", "\n", "\r", "\x0b"]
FIELD_EDGES = [
    None,
    "",
    " ",
    "  ",
    "a",
    " a",
    "a ",
    " a ",
    "\ta",
    "a\t",
    "\u00a0a",
    "a\u3000",
    "é",
    "a é",
    "~",
    "!",
    "\x7f",
    "\x1f a",
    "a\x00",
    "=1",
    "'x'",
    '"x"',
    "ab" * 40,
    "\u00a0",
    "\u00a0\u00a0 ",
]


def test_field_text_on_edges(con: duckdb.DuckDBPyConnection) -> None:
    assert _differ(con, FIELD_EDGES, "field_text(t)", "NULLIF(trim(t), '')") == []
    rows = con.execute(
        "SELECT field_text(' a '), field_text('a'), field_text('  '), field_text(NULL)"
    ).fetchall()
    assert rows == [("a", "a", None, None)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.text(alphabet=st.sampled_from([*SPACES, "a", "Z", "0", "-", "é", "\x7f", "~"])), max_size=60)
)
def test_field_text_on_generated_texts(con: duckdb.DuckDBPyConnection, texts: list[str]) -> None:
    assert _differ(con, texts, "field_text(t)", "NULLIF(trim(t), '')") == []


AMOUNT_EDGES = [
    None,
    "",
    "0",
    "-0",
    "+0",
    "1.",
    ".5",
    "-.5",
    "+1.25",
    "0.180869",
    "1" * 17,
    "1" * 18,
    "9" * 17 + ".999999999999",
    "-" + "9" * 17,
    "1." + "0" * 12,
    "1." + "0" * 13,
    "1." + "1" * 12,
    "1." + "1" * 13,
    "1.5e3",
    "1E-8",
    "1,000",
    "1 000",
    " 1",
    "1 ",
    "١٢",
    "１２",
    "0x10",
    "1_000",
    "nan",
    "inf",
    "--1",
    "+-1",
    ".",
    "-",
    "1..2",
    "00000000000000001.5",
]


def test_money_on_edges(con: duckdb.DuckDBPyConnection) -> None:
    for flag in ("", ", exponent := false"):
        assert _differ(con, AMOUNT_EDGES, f"money(t{flag})", f"sql_text_any_money(t{flag})") == []
    assert con.execute("SELECT money('0.180869'), money('1.5e3')").fetchall()[0] == (
        Decimal("0.180869"),
        Decimal(1500),
    )
    # The billing files' amounts take the short way.
    assert all(re.fullmatch(sql_text._PLAIN_AMOUNT, t) for t in ("0.180869", "-12.5", "7", "1." + "0" * 12))


_AMOUNTS = st.builds(
    lambda sign, whole, point, frac, exp: sign + whole + point + frac + exp,
    st.sampled_from(["", "+", "-", " "]),
    st.text(alphabet="0123456789", max_size=20),
    st.sampled_from(["", ".", ","]),
    st.text(alphabet="0123456789", max_size=15),
    st.sampled_from(["", "e3", "E-2", "e", " "]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_AMOUNTS, max_size=60))
def test_money_on_generated_amounts(con: duckdb.DuckDBPyConnection, texts: list[str]) -> None:
    for flag in ("", ", exponent := false"):
        assert _differ(con, texts, f"money(t{flag})", f"sql_text_any_money(t{flag})") == []


TIMESTAMP_EDGES = [
    None,
    "",
    "2024-03-26 17:51:32",
    "2024-03-26T17:51:32",
    "2024-03-26t17:51:32Z",
    "2024-03-26T17:51:32z",
    "2024-03-26 17:51:32 Z",
    "2024-02-30 10:00:00",
    "2024-02-29 23:59:59",
    "2023-02-29 00:00:00",
    "2024-01-01 24:00:00",
    "2024-01-01 23:60:00",
    "2024-01-01 23:59:60",
    "2024-01-01 99:99:99",
    "0000-01-01 00:00:00",
    "9999-12-31 23:59:59",
    "2024-01-01 00:00:00+01:00",
    "2024-01-01 00:00:00.5",
    "2024-01-01 00:00",
    "2024-01-01",
    "2024-1-01 00:00:00",
    "2024-01-01  00:00:00",
    "2024-01-01 00:00:00ZZ",
    "2024-01-01_00:00:00",
]


def test_utc_timestamp_on_edges(con: duckdb.DuckDBPyConnection) -> None:
    assert _differ(con, TIMESTAMP_EDGES, "utc_timestamp(t)", "sql_text_any_timestamp(t)") == []
    got = con.execute("SELECT CAST(utc_timestamp('2024-03-26T17:51:32Z') AS VARCHAR)").fetchall()
    assert got == [("2024-03-26 17:51:32",)]
    assert all(
        re.fullmatch(sql_text._SECONDS_UTC, t) for t in ("2024-03-26 17:51:32", "2024-03-26T17:51:32Z")
    )


def _two(top: int) -> st.SearchStrategy[str]:
    return st.integers(0, top).map(lambda n: f"{n:02d}")


_TIMESTAMPS = st.builds(
    lambda y, m, d, sep, hh, mm, ss, zone: f"{y}-{m}-{d}{sep}{hh}:{mm}:{ss}{zone}",
    st.sampled_from(["2024", "1999", "0001", "9999", "024", "20245"]),
    _two(13),
    _two(32),
    st.sampled_from([" ", "T", "t", "", "  ", "_"]),
    _two(25),
    _two(61),
    _two(61),
    st.sampled_from(["", "Z", "z", " Z", "+01:00", "-0530", "+15", ".25", "ZZ"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_TIMESTAMPS, max_size=60))
def test_utc_timestamp_on_generated_texts(con: duckdb.DuckDBPyConnection, texts: list[str]) -> None:
    assert _differ(con, texts, "utc_timestamp(t)", "sql_text_any_timestamp(t)") == []

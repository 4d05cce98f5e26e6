"""More accounts from the same events: how costlake's time grows with accounts (`--accounts-factor`).

The shared generator always bills 200 accounts. `spread` rewrites a billing CSV in place so that each
account's events are shared out among `factor` accounts: an event goes to the account numbered by
its original account and a hash of its `event_id`, so every version of an event (a re-delivery, a
correction) lands in the same new account, and the files derived from the input later (the one-day
correction, the next day) follow. The events, their days, services, regions and costs are unchanged,
so the totals per day stay the same; only the accounts (and the account-service series) multiply,
each a `factor`-th of its original's spend with the same shape. Every other value is read as text
and written back as it was read (DuckDB's CSV writer decides the quoting and the line ends, and a
quoted empty value comes back as an empty field). A row with an account but no event id is refused:
it has nothing to share its account out by.

Tested in tests/bench/test_accounts.py.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

# An account id stays 12 digits: the original number times the factor plus the event's share, modulo
# 10^12 (two of the shared generator's 200 accounts would have to lie within `factor` of each other
# after the wrap to share one; the bench counts the accounts it got).
_SPREAD = """
    COPY (
        SELECT * REPLACE (
            CASE WHEN event_id IS NULL AND account_id IS NOT NULL THEN error('{orphan}')
                 ELSE lpad(CAST((CAST(account_id AS HUGEINT) * {factor}
                                 + CAST(md5_number_lower(event_id) % {factor} AS HUGEINT)) % 1000000000000
                                AS VARCHAR), 12, '0')
            END AS account_id
        )
        FROM read_csv('{src}', header = true, all_varchar = true, quote = '"')
    ) TO '{dst}' (FORMAT csv, HEADER true)"""


_ORPHAN = "a row with an account but no event_id"


def spread(path: Path, factor: int) -> None:
    """Share each account's events of the CSV `path` out among `factor` accounts, in place (row order
    kept). Account ids must be numbers (the shared generator's and `costlake generate`'s are)."""
    if factor < 1:
        raise ValueError(f"an account factor must be at least 1, not {factor}")
    if factor == 1:
        return
    tmp = path.with_name(path.name + ".spread")
    con = duckdb.connect()
    try:
        con.execute("SET preserve_insertion_order = true")
        con.execute(_SPREAD.format(factor=factor, src=_quoted(path), dst=_quoted(tmp), orphan=_ORPHAN))
    except duckdb.Error as exc:
        tmp.unlink(missing_ok=True)
        if _ORPHAN not in str(exc):
            raise
        # One pass in the usual case; the count only for the message.
        orphans = f"""SELECT count(*) FROM read_csv('{_quoted(path)}', header = true, all_varchar = true)
                      WHERE event_id IS NULL AND account_id IS NOT NULL"""
        row = con.execute(orphans).fetchone()
        raise ValueError(f"{path}: {row[0] if row else 'a'} row(s) with an account but no event_id") from None
    finally:
        con.close()
    tmp.replace(path)


def count_accounts(paths: list[Path]) -> int:
    """The distinct accounts billed in these CSV files."""
    files = ", ".join(f"'{_quoted(p)}'" for p in paths)
    con = duckdb.connect()
    try:
        sql = f"SELECT count(DISTINCT account_id) FROM read_csv([{files}], header = true, all_varchar = true)"
        row = con.execute(sql).fetchone()
    finally:
        con.close()
    return int(row[0]) if row else 0


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")

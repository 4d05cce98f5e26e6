"""The API key store: keys verify until revoked, only their hashes are kept, the catalog's own tables
beside them are left alone, and several threads and processes can share it."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from costlake.errors import InputError
from costlake.lake.api_keys import KEY, KeyStore, store_path
from costlake.lake.metadata import LocalMetadata
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.tables import NAMESPACE, TABLES
from helpers import SEED, ingest_and_run, query_rows


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "keys.db")


def test_a_new_key_verifies_as_its_record(store: KeyStore) -> None:
    record, key = store.add("team-a", label="ci runner")
    assert KEY.fullmatch(key) and key.startswith(record.key_id + "_") and len(key) == 56
    assert (record.tenant_id, record.admin, record.label) == ("team-a", False, "ci runner")
    assert record.revoked_at is None and record.created_at.utcoffset() == dt.timedelta(0)
    assert store.verify(key) == record
    assert store.list() == [record]
    admin, admin_key = store.add(None, admin=True)
    assert store.verify(admin_key) == admin and admin.tenant_id is None and admin.admin


def test_only_the_whole_key_verifies(store: KeyStore) -> None:
    record, key = store.add("team-a")
    other, other_key = store.add("team-b")
    secret, other_secret = key[len(record.key_id) + 1 :], other_key[len(other.key_id) + 1 :]
    refused = [
        f"{record.key_id}_{other_secret}",  # another key's secret under this id
        f"{record.key_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",  # one character off
        f"clk_00000000_{secret}" if record.key_id != "clk_00000000" else f"clk_11111111_{secret}",
        key.upper(),
        key + "x",
        key[:-1],
        " " + key[1:],
        record.key_id,
        "",
        f"Bearer {key}",
        "clk_" + "é" * 52,
    ]
    assert [store.verify(k) for k in refused] == [None] * len(refused)
    assert store.verify(None) is None  # type: ignore[arg-type]
    assert store.verify(key) == record and store.verify(other_key) == other


def test_a_revoked_key_no_longer_verifies_and_keeps_its_first_revocation(store: KeyStore) -> None:
    record, key = store.add("team-a")
    revoked = store.revoke(record.key_id)
    assert revoked.revoked_at is not None and revoked.key_id == record.key_id
    assert store.verify(key) is None
    time.sleep(0.002)
    assert store.revoke(record.key_id[:9]).revoked_at == revoked.revoked_at
    assert store.list(include_revoked=False) == [] and store.list() == [revoked]


def test_a_whole_key_revokes_by_its_id_and_is_never_repeated_in_a_refusal(store: KeyStore) -> None:
    record, key = store.add("team-a")
    assert store.revoke(key).key_id == record.key_id
    unknown = "clk_0000000g_" + key[13:]
    with pytest.raises(InputError) as refused:
        store.revoke(unknown)
    assert key[13:] not in str(refused.value)


def test_only_the_hash_of_a_key_is_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.db")
    keys = [store.add("team-a")[1] for _ in range(3)]
    store.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for key in keys:
        secret = key.split("_", 2)[2]
        assert secret.encode() not in stored and key.encode() not in stored
        assert secret[:16].encode() not in stored
        assert hashlib.sha256(key.encode()).hexdigest().encode() in stored


def _sharing_first_digit(store: KeyStore) -> list[str]:
    """Ids of keys added until two share their first hex digit (17 keys at most): the ids of that digit."""
    ids: collections.defaultdict[str, list[str]] = collections.defaultdict(list)
    while True:
        key_id = store.add("team-a")[0].key_id
        ids[key_id[:5]].append(key_id)
        if len(ids[key_id[:5]]) == 2:
            return ids[key_id[:5]]


def test_a_prefix_lists_its_keys_and_revokes_only_when_unambiguous(store: KeyStore) -> None:
    first, second = _sharing_first_digit(store)
    prefix = first[:5]
    admin = store.add(None, admin=True)[0].key_id
    others = {admin} if admin.startswith(prefix) else set()  # the admin key's id is random too
    assert {k.key_id for k in store.list(prefix=prefix)} == {first, second} | others
    assert all(k.key_id.startswith("clk_") for k in store.list(prefix="clk_"))
    assert store.list(prefix="clk_g") == [] and store.list(tenant_id="team-b") == []
    assert {k.admin for k in store.list(tenant_id="team-a")} == {False}
    with pytest.raises(InputError, match=rf"^'{prefix}' matches \d+ keys: give more of the id$"):
        store.revoke(prefix)
    with pytest.raises(InputError, match=r"^no API key matches 'clk_g'$"):
        store.revoke("clk_g")
    with pytest.raises(InputError, match="give the id"):
        store.revoke(" ")
    assert store.revoke(first).key_id == first
    assert {k.key_id for k in store.list(prefix=prefix, include_revoked=False)} == {second} | others


def test_a_key_has_a_tenant_unless_it_is_an_admin_key(store: KeyStore) -> None:
    with pytest.raises(InputError, match="admin"):
        store.add("team-a", admin=True)
    with pytest.raises(InputError, match="needs a tenant"):
        store.add(None)
    with pytest.raises(InputError, match="needs a tenant"):
        store.add("")
    with pytest.raises(InputError, match="label"):
        store.add("team-a", label="x" * 201)
    assert store.list() == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "ROOT/catalog.db"),
        ({"catalog_uri": "sqlite:////srv/lake/catalog.db"}, "/srv/lake/catalog.db"),
        ({"catalog_uri": "sqlite+pysqlite:////srv/c.db?timeout=3"}, "/srv/c.db"),
        ({"catalog_uri": "sqlite:///:memory:"}, "ROOT/keys.db"),
        ({"catalog_uri": "postgresql://db.internal/lake"}, "ROOT/keys.db"),
        ({"catalog": "glue"}, "ROOT/keys.db"),
        ({"catalog": "glue", "warehouse": "s3://bucket/lake"}, "ROOT/keys.db"),
        ({"warehouse": "s3://bucket/lake", "catalog_uri": "sqlite:////srv/s3.db"}, "/srv/s3.db"),
        ({"warehouse": "s3://bucket/lake", "catalog_uri": "postgresql://db/lake"}, "ROOT/keys.db"),
    ],
)
def test_keys_live_in_the_sqlite_catalog_else_in_keys_db(
    tmp_path: Path, options: dict[str, str], expected: str
) -> None:
    settings = Settings(**{"warehouse": str(tmp_path / "wh"), **options})  # type: ignore[arg-type]
    root = tmp_path / "root"
    assert store_path(settings, root) == Path(expected.replace("ROOT", str(root)))


def test_keys_beside_the_catalog_leave_its_tables_alone(tmp_path: Path) -> None:
    settings = Settings(warehouse=str(tmp_path / "wh"))
    early = KeyStore.for_settings(settings, tmp_path / "wh")  # before the catalog exists
    _, key = early.add("team-a")
    wh = Warehouse(settings)
    ingest_and_run(wh, SEED)
    store = KeyStore.for_settings(wh.settings, wh.root)
    assert store.path == wh.root / "catalog.db"
    record, later_key = store.add(None, admin=True)
    store.revoke(record.key_id)
    reopened = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    names = {name for _, name in reopened.catalog.list_tables(NAMESPACE)}
    assert names == set(TABLES)
    assert set(LocalMetadata(wh.root, NAMESPACE).locations() or {}) == names
    assert query_rows(reopened, "SELECT count(*) AS n FROM daily_account_cost")[0]["n"] > 0
    assert store.verify(key) is not None and store.verify(later_key) is None


def test_a_revocation_is_seen_at_once_by_another_connection(tmp_path: Path) -> None:
    server, operator = KeyStore(tmp_path / "catalog.db"), KeyStore(tmp_path / "catalog.db")
    record, key = operator.add("team-a")
    assert server.verify(key) == record
    operator.revoke(record.key_id)
    assert server.verify(key) is None


def test_threads_add_and_verify_keys_at_once(store: KeyStore) -> None:
    def add_and_verify(n: int) -> list[str]:
        made = [store.add(f"team-{n}") for _ in range(10)]
        assert all(store.verify(key) == record for record, key in made)
        return [record.key_id for record, _ in made]

    with ThreadPoolExecutor(8) as pool:
        ids = [key_id for made in pool.map(add_and_verify, range(8)) for key_id in made]
    assert len(set(ids)) == 80 and len(store.list()) == 80


def test_a_commit_holding_the_database_delays_an_add_without_failing_it(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "catalog.db")
    holder = sqlite3.connect(tmp_path / "catalog.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    record, key = store.add("team-a")
    assert time.monotonic() - started >= 0.25 and store.verify(key) == record
    release.join()
    holder.close()


def test_verify_is_fast_once_warm(store: KeyStore) -> None:
    for n in range(50):
        store.add(f"team-{n}")
    record, key = store.add("team-a")
    store.verify(key)
    started = time.perf_counter()
    for _ in range(500):
        assert store.verify(key) == record
    assert (time.perf_counter() - started) / 500 < 0.0002


def test_the_unassigned_pool_gets_no_key(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'unassigned' holds the accounts no tenants file names yet"):
        KeyStore(tmp_path / "keys.db").add("unassigned")

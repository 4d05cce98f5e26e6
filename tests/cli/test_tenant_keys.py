"""`costlake tenants add-key | list-keys | revoke-key`, run as a user runs them: the key is shown once
on the last line, listings never show it, and a revocation reaches a store open in another process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from costlake.lake.api_keys import KEY, KeyStore
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.tenants import load_tenants
from costlake.settings import Settings
from helpers import SEED, cli, ingest_and_run


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A published lake whose account A1 belongs to team-a (A2 is unassigned)."""
    folder = tmp_path_factory.mktemp("tenant_keys")
    wh = Warehouse(Settings(warehouse=str(folder / "wh")))
    ingest_and_run(wh, SEED)
    owners = folder / "owners.csv"
    owners.write_text("account_id,tenant_id\nA1,team-a\n")
    load_tenants(wh, owners)
    return folder / "wh"


def _store(lake: Path) -> KeyStore:
    return KeyStore.for_settings(Settings(warehouse=str(lake)), lake)


def test_add_key_shows_the_key_once_on_its_last_line(lake: Path) -> None:
    made = cli(lake, "tenants", "add-key", "team-a", "--label", "ci runner")
    assert made.returncode == 0, made.stderr
    *about, key = made.stdout.splitlines()
    assert KEY.fullmatch(key) and "shown once: store it now" in about[-1] and "team-a" in about[-1]
    record = _store(lake).verify(key)
    assert record is not None and record.tenant_id == "team-a" and record.label == "ci runner"
    listed = cli(lake, "tenants", "list-keys", "--tenant", "team-a", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    secret = key.split("_", 2)[2]
    assert secret not in listed.stdout and "sha256" not in listed.stdout
    (row,) = [r for r in json.loads(listed.stdout) if r["key_id"] == record.key_id]
    assert row == {
        "key_id": record.key_id,
        "tenant_id": "team-a",
        "admin": False,
        "label": "ci runner",
        "created_at": record.created_at.isoformat(),
        "revoked_at": None,
    }


def test_a_revocation_reaches_a_store_open_in_another_process(lake: Path) -> None:
    server = _store(lake)
    record, key = server.add(None, admin=True, label="ops")
    assert server.verify(key) == record
    shown = cli(lake, "tenants", "list-keys", "--prefix", record.key_id)
    assert "(admin)" in shown.stdout and "active" in shown.stdout and "ops" in shown.stdout
    revoked = cli(lake, "tenants", "revoke-key", record.key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith(f"API key {record.key_id} (admin) revoked at ")
    assert server.verify(key) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add-key", "team-x"), "error: unknown tenant 'team-x'"),
        (("add-key", "team-a", "--admin"), "error: --admin makes a key for every tenant: give no TENANT"),
        (("add-key",), "error: give the TENANT the key acts for, or --admin for an admin key"),
        (("revoke-key", "clk_zz"), "error: no API key matches 'clk_zz'"),
        (("list-keys", "--format", "csv"), "error: --format must be text or json, not 'csv'"),
    ],
)
def test_a_refusal_is_one_line(lake: Path, args: tuple[str, ...], message: str) -> None:
    refused = cli(lake, "tenants", *args)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(message) and len(refused.stderr.splitlines()) == 1


def test_a_load_warns_of_active_keys_of_a_tenant_left_without_accounts(tmp_path: Path) -> None:
    """A key acts for a tenant id: a review emptied a tenant, gave its id to another customer's account
    later, and the old key read that account. The load that empties a tenant says so."""
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    ingest_and_run(wh, SEED)
    owners = tmp_path / "owners.csv"
    owners.write_text("account_id,tenant_id\nA1,team-a\nA2,team-b\n")
    assert cli(wh.root, "tenants", "load", str(owners)).stderr == ""
    made = cli(wh.root, "tenants", "add-key", "team-b")
    assert made.returncode == 0, made.stderr
    owners.write_text("account_id,tenant_id\nA2,team-a\n")
    moved = cli(wh.root, "tenants", "load", str(owners))
    assert moved.returncode == 0 and moved.stderr.splitlines() == [
        "warning: tenant team-b owns no account now, and 1 active API key(s) of it stay active: a tenants "
        "file that gives team-b accounts again gives those keys their data; revoke them with `costlake "
        "tenants revoke-key`"
    ]
    key_id = made.stdout.splitlines()[-2].split()[2]
    assert cli(wh.root, "tenants", "revoke-key", key_id).returncode == 0
    assert cli(wh.root, "tenants", "load", str(owners)).stderr == ""

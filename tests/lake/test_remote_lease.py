"""One writer across hosts for an S3 warehouse: the writer lease in the bucket (lake/lease.py).

Two writers that share the S3 warehouse but not their local folder (as two job containers on two
hosts) exclude each other through the lease; a crashed holder's lease is taken over once expired; a
long hold keeps it by renewal; a writer whose lease was taken stops before its next commit; a local
warehouse never reaches S3. Against moto's server on 127.0.0.1, started here; short lease durations
keep every test to seconds.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from costlake.lake.lease import LEASE_KEY, LeaseLost, S3Lease
from costlake.lake.lock import LockTimeout, ensure_held
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from moto_s3 import AWS_ENV, moto_endpoint, s3_with_bucket

BUCKET = "costlake-lease-test"


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint() as url:
        yield url


@pytest.fixture
def s3(monkeypatch, endpoint):
    return s3_with_bucket(monkeypatch, endpoint, BUCKET)


def _warehouse(endpoint: str, tmp_path: Path, local: str, on_wait=None, **settings) -> Warehouse:  # type: ignore[no-untyped-def]
    """A writer of the test's S3 warehouse with its own local folder, as on its own host."""
    s = Settings(
        warehouse=f"s3://{BUCKET}/{tmp_path.name}",
        catalog="glue",
        s3_endpoint=endpoint,
        glue_endpoint=endpoint,
        aws_region="us-east-1",
        local_dir=str(tmp_path / local),
        **settings,
    )
    return Warehouse(s, on_wait=on_wait)


def _lease(s3, tmp_path: Path) -> dict | None:  # type: ignore[no-untyped-def,type-arg]
    try:
        body = s3.get_object(Bucket=BUCKET, Key=f"{tmp_path.name}/{LEASE_KEY}")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return json.loads(body)


def test_writers_on_two_hosts_exclude_each_other(s3, endpoint, tmp_path: Path) -> None:
    a = _warehouse(endpoint, tmp_path, "host-a")
    told: list[str] = []
    b = _warehouse(endpoint, tmp_path, "host-b", on_wait=told.append, lock_timeout_seconds=1.0)
    with a.writer("backfill"):
        lease = _lease(s3, tmp_path)
        assert lease is not None and lease["owner"]["command"] == "backfill"
        assert {"pid", "host", "token"} <= set(lease["owner"]) and lease["taken_at"] < lease["expires_at"]
        started = time.monotonic()
        with pytest.raises(LockTimeout) as failed, b.writer("run"):
            pytest.fail("took the lock another host holds")
        assert 1.0 <= time.monotonic() - started < 5
    message = str(failed.value)
    assert len(message.splitlines()) == 1
    where = f"s3://{BUCKET}/{tmp_path.name}/{LEASE_KEY}"
    assert message.startswith(f"{where}: gave up after 1 s waiting for backfill (pid {os.getpid()} on ")
    assert ", since " in message and "--lock-timeout" in message
    assert len(told) == 1 and told[0].startswith(f"waiting for backfill (pid {os.getpid()} on ")
    assert _lease(s3, tmp_path) is None  # released

    # While one holds it the other waits, says so once, and goes on once it is released.
    told.clear()
    b.settings.lock_timeout_seconds = 20
    held, order = threading.Event(), []

    def hold() -> None:
        with a.writer("backfill"):
            held.set()
            time.sleep(1.0)
            order.append("a released")

    thread = threading.Thread(target=hold)
    thread.start()
    assert held.wait(10)
    with b.writer("run"):
        order.append("b holds")
        assert _lease(s3, tmp_path)["owner"]["command"] == "run"  # type: ignore[index]
    thread.join()
    assert order == ["a released", "b holds"] and len(told) == 1 and "waiting for backfill" in told[0]


def test_a_blocked_costlake_command_on_another_host_names_the_holder(s3, endpoint, tmp_path: Path) -> None:
    a = _warehouse(endpoint, tmp_path, "host-a")
    env = {
        **os.environ,
        **AWS_ENV,
        "COSTLAKE_CATALOG": "glue",
        "COSTLAKE_S3_ENDPOINT": endpoint,
        "COSTLAKE_GLUE_ENDPOINT": endpoint,
        "COSTLAKE_AWS_REGION": "us-east-1",
        "COSTLAKE_LOCAL_DIR": str(tmp_path / "host-b"),
    }
    with a.writer("backfill"):
        blocked = subprocess.run(
            [
                sys.executable,
                "-m",
                "costlake",
                "--warehouse",
                a.settings.warehouse,
                "--lock-timeout",
                "1.5",
                "run",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    lines = blocked.stderr.splitlines()
    assert blocked.returncode == 1, blocked.stderr
    assert lines[0].startswith(f"waiting for backfill (pid {os.getpid()} on ") and "since" in lines[0]
    assert lines[1].startswith("error: ") and "gave up after 1.5 s waiting for backfill" in lines[1]
    assert len(lines) == 2


def test_the_expired_lease_of_a_crashed_writer_is_taken_over(s3, endpoint, tmp_path: Path, caplog) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    stale = {
        "owner": {"command": "run", "pid": 4711, "host": "crashed-host", "token": "dead"},
        "taken_at": (past - dt.timedelta(minutes=1)).isoformat(),
        "expires_at": past.isoformat(),
    }
    s3.put_object(Bucket=BUCKET, Key=f"{tmp_path.name}/{LEASE_KEY}", Body=json.dumps(stale).encode())
    b = _warehouse(endpoint, tmp_path, "host-b", lock_timeout_seconds=2)
    with caplog.at_level(logging.WARNING, logger="costlake.lake.lease"), b.writer("ingest"):
        lease = _lease(s3, tmp_path)
        assert (
            lease is not None and lease["owner"]["command"] == "ingest" and lease["owner"]["token"] != "dead"
        )
    assert "took over the expired writer lease of run (pid 4711 on crashed-host" in caplog.text
    assert _lease(s3, tmp_path) is None


def test_renewal_keeps_the_lease_past_its_nominal_expiry(s3, endpoint, tmp_path: Path) -> None:
    a = _warehouse(endpoint, tmp_path, "host-a", lock_lease_seconds=1.0, lock_renew_seconds=0.25)
    b = _warehouse(
        endpoint,
        tmp_path,
        "host-b",
        lock_lease_seconds=1.0,
        lock_renew_seconds=0.25,
        lock_timeout_seconds=1.0,
    )
    with a.writer("backfill"):
        first = _lease(s3, tmp_path)
        time.sleep(1.5)  # past the first expiry
        with pytest.raises(LockTimeout, match="waiting for backfill"), b.writer("run"):
            pytest.fail("took a lease that is being renewed")
        now = _lease(s3, tmp_path)
        assert now is not None and now["owner"] == first["owner"]  # type: ignore[index]
        assert now["expires_at"] > first["expires_at"] and now["taken_at"] == first["taken_at"]  # type: ignore[index]
        ensure_held(a.root)  # still ours
    assert _lease(s3, tmp_path) is None


def test_a_writer_whose_lease_was_taken_stops_before_its_next_commit(
    s3, endpoint, tmp_path: Path, caplog
) -> None:
    a = _warehouse(endpoint, tmp_path, "host-a", lock_lease_seconds=1.0, lock_renew_seconds=0.2)
    other = {"owner": {"command": "run", "pid": 1, "host": "elsewhere", "token": "t"}, "taken_at": "x"}
    key = f"{tmp_path.name}/{LEASE_KEY}"
    lost = pytest.raises(LeaseLost, match="lost the writer lease of backfill: it was taken by run")
    with lost, caplog.at_level(logging.ERROR, logger="costlake.lake.lease"), a.writer("backfill"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(other).encode())  # e.g. a paused host
        time.sleep(0.6)
        assert "lost the writer lease of backfill" in caplog.text  # logged at once by the renewal
        with pytest.raises(LeaseLost):
            ensure_held(a.root)  # what every commit calls first
    assert _lease(s3, tmp_path) == other  # the other writer's lease is left alone


def test_a_local_warehouse_never_reaches_s3(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from costlake.lake.warehouse import Warehouse\n"
        "from costlake.settings import Settings\n"
        f"wh = Warehouse(Settings(warehouse={str(tmp_path / 'wh')!r}, s3_endpoint='http://127.0.0.1:9'))\n"
        "with wh.writer('run'), wh.writer('anomalies'):\n"
        "    pass\n"
        "assert wh._s3 is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "wh" / ".costlake.lock").is_file()


def test_renewal_must_come_before_the_lease_expires() -> None:
    with pytest.raises(ValidationError, match="lock_renew_seconds must be less than lock_lease_seconds"):
        Settings(lock_lease_seconds=10, lock_renew_seconds=10)


def test_a_create_retried_after_its_answer_was_lost_is_still_ours(s3, tmp_path: Path) -> None:
    """botocore retries a PutObject whose answer it lost: the retry fails If-None-Match on our own
    lease, which must be recognized (same owner token) rather than waited out."""
    lease = S3Lease(s3, f"s3://{BUCKET}/{tmp_path.name}", "run", lease_s=5, renew_s=1)
    body = {"owner": lease.owner, "taken_at": "t", "expires_at": "2999-01-01T00:00:00+00:00"}
    s3.put_object(Bucket=BUCKET, Key=f"{tmp_path.name}/{LEASE_KEY}", Body=json.dumps(body).encode())
    try:
        assert lease.try_take()
        assert _lease(s3, tmp_path)["expires_at"] < "2999"  # type: ignore[index]
    finally:
        lease.release()
    assert _lease(s3, tmp_path) is None

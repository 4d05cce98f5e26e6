"""An export's delivery read straight from S3: its manifest, then the data files it lists.

`ingest --manifest s3://bucket/…/<report>-Manifest.json` downloads the manifest and the files it
lists into a private scratch folder, each under its key (`<bucket>/<key>`), so that the local copy
has the export's layout and `manifest.read_manifest` checks it as it checks one made by `aws s3 sync`.
The manifest is untrusted: before any data file is downloaded, every listed object must be in the
manifest's own bucket, under the delivery's prefix (the CUR billing period's folder, the export's
`data/BILLING_PERIOD=…/`), at a place `manifest.Layout` accepts, so nothing else in the bucket is
ever read. For an update's own copy of a CUR manifest, the period folder's manifest of the same name
is fetched too (`read_manifest` tells when it names another update). The client is the warehouse's
(`lake.connect.s3_client`: its `s3_endpoint` and `aws_region`, credentials from the AWS chain).
"""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from costlake.errors import InputError, first_line
from costlake.logs import current
from costlake.sources import manifest as manifests

# Disk the ingest keeps for its own working files (DuckDB's spill, staged Parquet) beside the download
HEADROOM = 256 << 20


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def fetch_delivery(uri: str, client: Any, into: Path) -> tuple[Path, dict[Path, str]]:
    """The local copy of the manifest at `uri` and of each file it lists, under `into`; and the
    s3:// URI each local file was downloaded from. `client`: a boto3 S3 client."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key or "/" in bucket:
        raise InputError(f"{uri}: not the s3:// URI of a manifest (s3://bucket/key)")
    manifests.check_key(uri, key)
    local = into / bucket / key
    _fetch_manifest(client, bucket, key, local, missing_ok=False)
    body = manifests.read_json(local)
    kind, listed = manifests.listed_objects(local, body)
    where = manifests.layout(local, body, kind)
    prefix = manifests.delivery_prefix(key, where) + "/"
    places = []
    for their_bucket, their_key in listed:
        named = f"s3://{their_bucket or bucket}/{their_key}"
        if (their_bucket or bucket) != bucket or not their_key.startswith(prefix):
            raise InputError(f"{uri}: {named[:300]!r} is not in the delivery's folder s3://{bucket}/{prefix}")
        rest = where.place(uri, their_key)
        if their_key != prefix + "/".join(rest):  # the period's folder named again inside the key
            raise InputError(f"{uri}: {named[:300]!r} is not at its place in s3://{bucket}/{prefix}")
        places.append(rest)
    keys = [k for _, k in listed]
    manifests.check_uniform(uri, keys, places)
    _check_room(uri, _sizes(client, bucket, keys), into)
    if where.own:
        period_copy = f"{prefix}{PurePosixPath(key).name}"  # an update's copy: the period's own manifest
        _fetch_manifest(client, bucket, period_copy, into / bucket / period_copy, missing_ok=True)
    wanted = {into / bucket / k: f"s3://{bucket}/{k}" for k in keys}
    progress = current()
    progress.start("downloading the delivery", total=len(wanted), unit="files")
    for (target, named), their_key in zip(wanted.items(), keys, strict=True):
        _download(client, bucket, their_key, target, named)
        progress.advance()
    return local, wanted


def _sizes(client: Any, bucket: str, keys: list[str]) -> list[int]:
    """The size of each listed object, asked before anything is downloaded: a part that is missing
    or refused stops the command before it spends time and disk on the others."""
    sizes = []
    for key in keys:
        try:
            sizes.append(int(client.head_object(Bucket=bucket, Key=key)["ContentLength"]))
        except Exception as exc:  # noqa: BLE001 - botocore's errors, told apart in _s3_error
            raise _s3_error(f"s3://{bucket}/{key}", exc, client, bucket) from None
    return sizes


def _check_room(uri: str, sizes: list[int], into: Path) -> None:
    """Refuses a delivery larger than the scratch folder's disk has room for (less `HEADROOM`, which
    the ingest's own working files need): a manifest can list any number of parts of any size, and
    a disk filled half-way fails later, having read for nothing."""
    need, free = sum(sizes), shutil.disk_usage(into).free
    if need > free - HEADROOM:
        raise InputError(
            f"{uri}: its {len(sizes):,} data file(s) hold {_size(need)}, more than the "
            f"{_size(max(free - HEADROOM, 0))} free for them where they would be downloaded "
            f"({into.parent}); set TMPDIR to a folder on a larger disk"
        )


def _size(count: int) -> str:
    """A byte count for people: 1.5 GiB, 312.0 MiB, 20 KiB."""
    for unit, shift in (("GiB", 30), ("MiB", 20)):
        if count >= 1 << shift:
            return f"{count / (1 << shift):,.1f} {unit}"
    return f"{-(-count >> 10):,} KiB"


def _fetch_manifest(client: Any, bucket: str, key: str, target: Path, *, missing_ok: bool) -> None:
    """A manifest, refused unread when it is larger than a manifest can be."""
    uri = f"s3://{bucket}/{key}"
    try:
        size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except Exception as exc:  # noqa: BLE001 - botocore's errors, told apart in _s3_error
        if missing_ok and _code(exc) in _MISSING:
            return
        raise _s3_error(f"s3://{bucket}/{key}", exc, client, bucket) from None
    if size > manifests.MAX_BYTES:
        raise InputError(
            f"s3://{bucket}/{key}: larger than {manifests.MAX_BYTES >> 20} MiB; not an export manifest"
        )
    _download(client, bucket, key, target, uri if target.name == PurePosixPath(key).name else key)


def _download(client: Any, bucket: str, key: str, target: Path, uri: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a key that is a folder of another key, a full disk
        raise InputError(f"{uri}: cannot be written to the scratch folder ({first_line(exc)})") from None
    try:
        client.download_file(bucket, key, str(target))
    except OSError as exc:
        raise InputError(f"{uri}: cannot be written to the scratch folder ({first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - botocore's errors, told apart in _s3_error
        raise _s3_error(uri, exc, client, bucket) from None


_MISSING = {"404", "NoSuchKey", "NotFound"}
_REASONS = {
    "NoSuchKey": "no such object",
    "NoSuchBucket": "no such bucket",
    "403": "access denied",
    "AccessDenied": "access denied",
    "InvalidAccessKeyId": "the credentials are not known to S3",
    "SignatureDoesNotMatch": "the credentials are refused by S3",
}


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    return str(response.get("Error", {}).get("Code") or "") if isinstance(response, dict) else ""


def _s3_error(uri: str, exc: Exception, client: Any, bucket: str) -> InputError:
    """One line for what S3 (or the way to it) said: a missing object or bucket, a refusal, no
    credentials, no endpoint. A bare 404 (HEAD has no body) is told apart by asking for the bucket."""
    code = _code(exc)
    if code in _MISSING:
        return InputError(
            f"{uri}: {'no such object' if _bucket_exists(client, bucket) else 'no such bucket'}"
        )
    if code:
        message = str(getattr(exc, "response", {}).get("Error", {}).get("Message") or "")
        reason = _REASONS.get(code) or f"S3 answered {code}" + (f": {message}" if message else "")
        return InputError(f"{uri}: {' '.join(reason.split())[:300]}")
    return InputError(f"{uri}: S3 cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())[:300]})")


def _bucket_exists(client: Any, bucket: str) -> bool:
    try:
        client.head_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 - only a missing bucket says so; a refusal may hide one
        return _code(exc) not in {*_MISSING, "NoSuchBucket"}
    return True

"""An export's delivery read straight from S3: its manifest, then the data files it lists.

`ingest --manifest s3://bucket/…/<report>-Manifest.json` downloads the manifest and the files it
lists into a private scratch folder, each under its key (`<bucket>/<key>`), so that the local copy
has the export's layout and `manifest.read_manifest` checks it as it checks one made by `aws s3 sync`.
The manifest is untrusted: before any data file is downloaded, every listed object must be in the
manifest's own bucket, under the delivery's prefix (the CUR billing period's folder, the export's
`data/BILLING_PERIOD=…/`), with a key that can be a file; nothing else in the bucket is ever read.
The client is the warehouse's (`lake.connect.s3_client`: its `s3_endpoint` and `aws_region`, and
credentials from the standard AWS chain).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costlake.errors import InputError, first_line
from costlake.logs import current
from costlake.sources import manifest as manifests


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def fetch_delivery(uri: str, client: Any, into: Path) -> tuple[Path, dict[Path, str]]:
    """The local copy of the manifest at `uri` and of each file it lists, under `into`; and the
    s3:// URI each local file was downloaded from. `client`: a boto3 S3 client."""
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key or "/" in bucket:
        raise InputError(f"{uri}: not the s3:// URI of a manifest (s3://bucket/key)")
    local = into / bucket / key
    manifests.check_key(uri, key)
    size = _size(client, bucket, key, uri)
    if size > manifests.MAX_BYTES:
        raise InputError(f"{uri}: larger than {manifests.MAX_BYTES >> 20} MiB; not an export manifest")
    _download(client, bucket, key, local, uri)
    kind, listed = manifests.listed_objects(local, manifests.read_json(local))
    prefix = manifests.delivery_prefix(local, key, kind) + "/"
    wanted: dict[Path, str] = {}
    for their_bucket, their_key in listed:
        named = f"s3://{their_bucket or bucket}/{their_key}"
        manifests.check_key(local, their_key)
        if (their_bucket or bucket) != bucket or not their_key.startswith(prefix):
            raise InputError(f"{uri}: {named[:300]!r} is not in the delivery's folder s3://{bucket}/{prefix}")
        wanted[into / bucket / their_key] = named
    progress = current()
    progress.start("downloading the delivery", total=len(wanted), unit="files")
    for target, named in wanted.items():
        _download(client, bucket, named[len(f"s3://{bucket}/") :], target, named)
        progress.advance()
    return local, wanted


def _size(client: Any, bucket: str, key: str, uri: str) -> int:
    try:
        return int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except Exception as exc:  # noqa: BLE001 - botocore's errors, told apart below
        raise _s3_error(uri, exc) from None


def _download(client: Any, bucket: str, key: str, target: Path, uri: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        client.download_file(bucket, key, str(target))
    except Exception as exc:  # noqa: BLE001 - botocore's errors, told apart below
        raise _s3_error(uri, exc) from None


def _s3_error(uri: str, exc: Exception) -> InputError:
    """One line for what S3 (or the way to it) said: a missing object or bucket, a refusal, no
    credentials, no endpoint."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        code = str(error.get("Code") or "")
        reason = {"404": "no such object", "NoSuchKey": "no such object", "NoSuchBucket": "no such bucket",
                  "403": "access denied", "AccessDenied": "access denied"}.get(code, code)  # fmt: skip
        return InputError(f"{uri}: {reason or 'refused by S3'}")
    return InputError(f"{uri}: S3 cannot be read ({type(exc).__name__}: {first_line(exc)[:300]})")

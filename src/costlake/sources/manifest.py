"""The data files an AWS export manifest lists, found in a local copy of the export.

AWS writes a manifest beside each delivery of a Cost and Usage Report, naming the S3 keys of the
delivery's data files; together they are one delivery of the billing period (pipeline/deliveries.py).
Two kinds are read:

  CUR (legacy)   `<report>-Manifest.json` in `<prefix>/<report>/<yyyymmdd-yyyymmdd>/`; its
                 `reportKeys` are keys in the bucket, under that same folder (in the `<assemblyId>/`
                 folder of the update when the report keeps every version).
  Data Exports   `<export>-Manifest.json` in `<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/`
                 (CUR 2.0); its `dataFiles` are `s3://bucket/key` URIs under `<prefix>/<export>/data/`.

The manifest is read from a local copy that keeps the keys' layout (`aws s3 sync` of the report's
prefix). A manifest is as untrusted as any billing file: its keys are only ever looked for inside
the export's own folder (the manifest's folder for a CUR, `<export>/` for Data Exports), so a key
such as `../../.ssh/id_rsa`, an absolute path or a symbolic link out of that folder is refused, and
nothing is read before every listed file has been found.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from costlake.errors import InputError, first_line

MAX_BYTES = 64 << 20  # a manifest with every CUR column and thousands of keys is far smaller
MAX_FILES = 100_000
MAX_KEY = 1024  # S3's limit on a key, in bytes

CUR = "CUR"
DATA_EXPORTS = "Data Exports"


@dataclass(frozen=True)
class ExportManifest:
    """A manifest and the local data files it lists, in its order."""

    path: Path
    kind: str  # CUR or DATA_EXPORTS
    delivery: str  # the CUR's assemblyId or the export's executionId ("" when it has none)
    period: str  # the billing period it names, as written ("" when it names none)
    files: list[Path]


def read_manifest(path: Path) -> ExportManifest:
    """The manifest at `path` with every file it lists, found under the export's folder; one-line
    errors for a manifest that cannot be read, a key that cannot be a file of this export, or a file
    that is not there."""
    body = _json(path)
    kind, keys = _listed(path, body)
    folder = _export_folder(path, kind)
    files: list[Path] = []
    seen: dict[Path, str] = {}
    for key in keys:
        local = _local(path, folder, key)
        if local in seen:
            raise InputError(f"{path}: {key!r} and {seen[local]!r} are one file ({local})")
        seen[local] = key
        files.append(local)
    delivery = body.get("assemblyId" if kind == CUR else "executionId")
    return ExportManifest(path, kind, _text(delivery), _period(body, path, kind), files)


def _json(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected an export manifest (JSON)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({first_line(exc)})") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{path}: larger than {MAX_BYTES >> 20} MiB; not an export manifest")
    try:
        body = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{path}: not a JSON manifest ({first_line(exc)[:200]})") from None
    if not isinstance(body, dict):
        raise InputError(f"{path}: not an export manifest (a JSON object with reportKeys or dataFiles)")
    return body


def _listed(path: Path, body: dict[str, Any]) -> tuple[str, list[str]]:
    """The manifest's kind and its keys (the `s3://bucket/` of a Data Exports URI taken off)."""
    present = [name for name in ("reportKeys", "dataFiles") if name in body]
    if len(present) != 1:
        found = "both reportKeys and dataFiles" if present else "neither reportKeys nor dataFiles"
        raise InputError(f"{path}: has {found}; expected a CUR or a Data Exports manifest")
    name = present[0]
    listed = body[name]
    if not isinstance(listed, list) or not all(isinstance(k, str) for k in listed):
        raise InputError(f"{path}: {name} is not a list of keys")
    if not listed:
        raise InputError(f"{path}: {name} is empty; the delivery has no data file")
    if len(listed) > MAX_FILES:
        raise InputError(f"{path}: {name} lists {len(listed):,} files, more than {MAX_FILES:,}")
    if name == "reportKeys":
        return CUR, listed
    return DATA_EXPORTS, [_key_of_uri(path, uri) for uri in listed]


def _key_of_uri(path: Path, uri: str) -> str:
    if not uri.startswith("s3://"):
        raise InputError(f"{path}: dataFiles entry {uri[:200]!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise InputError(f"{path}: dataFiles entry {uri[:200]!r} names no key in a bucket")
    return key


def _export_folder(path: Path, kind: str) -> Path:
    """Where the manifest's data files are: its own folder for a CUR; for Data Exports the export's
    folder, which holds `metadata/BILLING_PERIOD=…/` (the manifest's) and `data/`."""
    folder = path.absolute().parent
    if kind == CUR:
        return folder
    if folder.parent.name != "metadata" or not folder.name.startswith("BILLING_PERIOD="):
        raise InputError(
            f"{path}: a Data Exports manifest is read from its place in a copy of the export, "
            "<export>/metadata/BILLING_PERIOD=YYYY-MM/ (aws s3 sync of the export's prefix)"
        )
    return folder.parent.parent


def _local(path: Path, folder: Path, key: str) -> Path:
    """The file of `key` inside `folder`: the part of the key after the folder's name (the layout
    of an `aws s3 sync` copy), else the key's file name in the folder itself (the files copied flat
    beside the manifest)."""
    shown = repr(key[:200])
    parts = PurePosixPath(key).parts
    if (
        len(key.encode("utf-8", "surrogatepass")) > MAX_KEY
        or key.startswith("/")
        or any(p in ("", ".", "..") for p in key.split("/"))
        or any(ord(c) < 32 or c == "\x7f" for c in key)
    ):
        raise InputError(f"{path}: key {shown} cannot be a file of this export")
    inside = [folder.joinpath(*parts[i + 1 :]) for i, p in enumerate(parts[:-1]) if p == folder.name]
    candidates = list(dict.fromkeys([*inside, folder / parts[-1]]))
    for candidate in candidates:
        if candidate.is_file():
            real = candidate.resolve()
            if not real.is_relative_to(folder.resolve()):
                raise InputError(f"{path}: key {shown} leads out of the export's folder {folder}")
            return candidate
    raise InputError(
        f"{path}: the data file of key {shown} is not in the export's folder (looked for "
        f"{' and '.join(str(c) for c in candidates)}); copy the whole delivery, keeping its layout"
    )


def _period(body: dict[str, Any], path: Path, kind: str) -> str:
    if kind == DATA_EXPORTS:
        return path.absolute().parent.name.partition("=")[2]
    period = body.get("billingPeriod")
    if isinstance(period, dict):
        return f"{_text(period.get('start'))} to {_text(period.get('end'))}"
    return ""


def _text(value: object) -> str:
    """A manifest's identifier or date, for a message: a string, shortened; anything else, none."""
    return value[:100] if isinstance(value, str) else ""

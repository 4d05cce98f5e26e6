"""The data files an AWS export manifest lists, found in a local copy of the export.

AWS writes a manifest beside each delivery of a Cost and Usage Report, naming the S3 keys of the
delivery's data files; together they are one delivery of the billing period (pipeline/deliveries.py).
Two kinds are read:

  CUR (legacy)   `<report>-Manifest.json` in `<prefix>/<report>/<yyyymmdd-yyyymmdd>/`, the current
                 update's (a copy of each update's manifest also sits in its `<assemblyId>/` folder);
                 its `reportKeys` are keys in the bucket, in the `<assemblyId>/` folder of the update
                 when the report keeps every version, else in the period's folder itself.
  Data Exports   `<export>-Manifest.json` in `<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/`
                 (CUR 2.0); its `dataFiles` are `s3://bucket/key` URIs in
                 `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/`.

The manifest is read from its place in a local copy that keeps the keys' layout (`aws s3 sync` of
the report's prefix). A manifest is as untrusted as any billing file: a key is looked for only at its
place in the delivery's own folder (the billing period's folder of a CUR, the export's
`data/BILLING_PERIOD=…/` folder), after that folder's name in the key, so a key such as
`../../.ssh/id_rsa`, an absolute path, a key outside the period, or a symbolic link out of that folder
is refused, and nothing is read before every listed file has been found.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from costlake.errors import InputError, first_line

MAX_BYTES = 8 << 20  # a manifest with every CUR column and thousands of keys is far smaller
MAX_FILES = 100_000
MAX_KEY = 1024  # S3's limit on a key, in bytes

CUR = "CUR"
DATA_EXPORTS = "Data Exports"
_CUR_PERIOD = re.compile(r"\d{8}-\d{8}")
_EXPORT_PERIOD = re.compile(r"BILLING_PERIOD=\d{4}-\d{2}")


@dataclass(frozen=True)
class ExportManifest:
    """A manifest and the local data files it lists, in its order."""

    path: Path
    kind: str  # CUR or DATA_EXPORTS
    delivery: str  # the CUR's assemblyId or the export's executionId ("" when it has none)
    period: str  # the billing period it names, as written ("" when it names none)
    files: list[Path]
    # The update the manifest in the CUR period's folder names, when the one read is another
    # update's copy (in its `<assemblyId>/` folder): AWS keeps the current update's there.
    current: str = ""


def read_manifest(path: Path) -> ExportManifest:
    """The manifest at `path` with every file it lists, each at its place in the delivery's folder;
    one-line errors for a manifest that cannot be read, a key that cannot be a file of this
    delivery, or a file that is not there."""
    path = path.resolve()  # a link to a manifest reads the export the manifest lies in
    body = read_json(path)
    kind, keys = _listed(path, body)
    folder = _delivery_folder(path, kind)
    delivery = _text(body.get("assemblyId" if kind == CUR else "executionId"))
    files: list[Path] = []
    seen: dict[Path, str] = {}
    for key in keys:
        local = _local(path, folder, key, delivery if kind == CUR else "")
        real = local.resolve()
        if real in seen:
            raise InputError(f"{path}: keys {seen[real][:200]!r} and {key[:200]!r} are one file ({real})")
        seen[real] = key
        files.append(local)
    current = _current_update(path, folder, delivery) if kind == CUR else ""
    return ExportManifest(path, kind, delivery, _period(body, path, kind), files, current)


def read_json(path: Path) -> dict[str, Any]:
    """The manifest's JSON object, refused in one line when it cannot be one."""
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"{path}: not a regular file, expected an export manifest (JSON)")
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({first_line(exc)})") from None
    if len(raw) > MAX_BYTES:
        raise InputError(f"{path}: larger than {MAX_BYTES >> 20} MiB; not an export manifest")
    try:
        body = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_object, parse_constant=_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{path}: not a JSON manifest ({first_line(exc)[:200]})") from None
    if not isinstance(body, dict):
        raise InputError(f"{path}: not an export manifest (a JSON object with reportKeys or dataFiles)")
    return body


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when it names a key twice (which one counts would be a guess)."""
    out = dict(pairs)
    if len(out) != len(pairs):
        twice = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise ValueError(f"the key {twice[:100]!r} appears twice in one object")
    return out


def _constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _listed(path: Path, body: dict[str, Any]) -> tuple[str, list[str]]:
    """The manifest's kind and its keys (the `s3://bucket/` of a Data Exports URI taken off)."""
    kind, located = listed_objects(path, body)
    return kind, [key for _, key in located]


def listed_objects(path: Path, body: dict[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The manifest's kind and its data files as (bucket, key): a Data Exports URI's bucket, or an
    empty one for a CUR's key (which is in the manifest's bucket)."""
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
        return CUR, [("", key) for key in listed]
    return DATA_EXPORTS, [_object_of_uri(path, uri) for uri in listed]


def _object_of_uri(path: Path, uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise InputError(f"{path}: dataFiles entry {uri[:200]!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise InputError(f"{path}: dataFiles entry {uri[:200]!r} names no key in a bucket")
    return bucket, key


def _delivery_folder(path: Path, kind: str) -> Path:
    """The folder the delivery's files are in: a CUR's billing period folder (`yyyymmdd-yyyymmdd`,
    the manifest's, or its parent's for an update's copy in `<assemblyId>/`); the export's
    `data/BILLING_PERIOD=…/` for Data Exports."""
    folder = path.parent
    if kind == CUR:
        for candidate in (folder, folder.parent):
            if _CUR_PERIOD.fullmatch(candidate.name):
                return candidate
        raise InputError(
            f"{path}: a CUR manifest is read from its place in a copy of the report, "
            "<report>/<yyyymmdd-yyyymmdd>/ (aws s3 sync of the report's prefix)"
        )
    if folder.parent.name != "metadata" or not _EXPORT_PERIOD.fullmatch(folder.name):
        raise InputError(
            f"{path}: a Data Exports manifest is read from its place in a copy of the export, "
            "<export>/metadata/BILLING_PERIOD=YYYY-MM/ (aws s3 sync of the export's prefix)"
        )
    return folder.parent.parent / "data" / folder.name


def _local(path: Path, folder: Path, key: str, assembly: str) -> Path:
    """The file of `key`: the part of the key after the delivery folder's name, inside that folder
    (for a CUR that keeps every version, in the manifest's `<assemblyId>/` folder)."""
    shown = repr(key[:200])
    check_key(path, key)
    parts = PurePosixPath(key).parts
    after = [parts[i + 1 :] for i, p in enumerate(parts[:-1]) if p == folder.name]
    if not after:
        raise InputError(f"{path}: key {shown} is not in the delivery's folder {folder.name}/")
    rest = after[-1]
    if len(rest) > 1 and (len(rest) > 2 or not assembly or rest[0] != assembly):
        raise InputError(
            f"{path}: key {shown} is not in {folder.name}/ itself or in the {folder.name}/<assemblyId>/ "
            "folder of this update"
        )
    local = folder.joinpath(*rest)
    try:
        mode = local.stat().st_mode
        inside = local.resolve().is_relative_to(folder.resolve())
    except FileNotFoundError:
        raise InputError(
            f"{path}: the data file of key {shown} is not there ({local}); copy the whole delivery, "
            "keeping its layout"
        ) from None
    except OSError as exc:
        raise InputError(f"{path}: the data file of key {shown} cannot be read ({first_line(exc)})") from None
    if not inside:
        raise InputError(f"{path}: key {shown} leads out of the delivery's folder {folder}")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: the data file of key {shown} is not a regular file ({local})")
    return local


def check_key(path: Path | str, key: str) -> None:
    """Refuse a key that cannot name a file of a delivery: too long for S3, absolute, with `.`, `..`
    or empty segments, or with control characters."""
    if (
        len(key.encode("utf-8", "surrogatepass")) > MAX_KEY
        or key.startswith("/")
        or any(p in ("", ".", "..") for p in key.split("/"))
        or any(ord(c) < 32 or c == "\x7f" for c in key)
    ):
        raise InputError(f"{path}: key {key[:200]!r} cannot be a file of this delivery")


def delivery_prefix(path: Path, key: str, kind: str) -> str:
    """The key prefix (no trailing `/`) of the delivery whose manifest has `key` in its bucket: the
    billing period's folder of a CUR, the export's `data/BILLING_PERIOD=…` of Data Exports (the
    folder `read_manifest` reads its files from, as a key)."""
    folders = PurePosixPath(key).parts[:-1]
    local = _delivery_folder(path, kind)  # the same rules on the manifest's place
    if kind == CUR:
        period = folders.index(local.name, max(0, len(folders) - 2))
        return "/".join(folders[: period + 1])
    return "/".join([*folders[:-2], "data", folders[-1]])


def _current_update(path: Path, folder: Path, delivery: str) -> str:
    """For a manifest read from an update's `<assemblyId>/` folder, the update the period folder's
    manifest names when that is another one (""; also when it cannot be read)."""
    if path.parent == folder:
        return ""
    for other in sorted(folder.glob("*-Manifest.json")):
        try:
            named = _text(read_json(other).get("assemblyId"))
        except InputError:
            continue
        if named and named != delivery:
            return named
    return ""


def _period(body: dict[str, Any], path: Path, kind: str) -> str:
    if kind == DATA_EXPORTS:
        return path.parent.name.partition("=")[2]
    period = body.get("billingPeriod")
    if (
        isinstance(period, dict)
        and isinstance(period.get("start"), str)
        and isinstance(period.get("end"), str)
    ):
        return f"{_text(period['start'])} to {_text(period['end'])}"
    return ""


def _text(value: object) -> str:
    """A manifest's identifier or date, for a message: a string, shortened; anything else, none."""
    return value[:100] if isinstance(value, str) else ""

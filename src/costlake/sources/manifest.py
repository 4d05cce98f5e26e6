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
                 `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/`, or in its `<executionId>/` folder
                 when the export creates new files on each refresh.

The manifest is read from its place in a local copy that keeps the keys' layout (`aws s3 sync` of
the report's prefix). A manifest is as untrusted as any billing file: a key is looked for only at its
place in the delivery's own folder (`Layout`: after the period's folder, which follows the report's
name, or the export's `data/`, in the key), all of one delivery's files in one place (the period's
folder or the manifest's own update folder: updates reuse file names), and through no symbolic link
below the period's folder; nothing is read before every listed file has been found.
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
MAX_NAME = 255  # a file name's limit on the file systems a copy is made on, in bytes

CUR = "CUR"
DATA_EXPORTS = "Data Exports"
_CUR_PERIOD = re.compile(r"\d{8}-\d{8}")
_CUR_YEAR = re.compile(r"year=\d{4}")  # a report that overwrites its versions, and every Parquet one
_CUR_MONTH = re.compile(r"month=\d{1,2}")
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
    path = _manifest_path(path)
    body = read_json(path)
    kind, keys = _listed(path, body)
    where = layout(path, body, kind)
    places = [where.place(path, key) for key in keys]
    check_uniform(path, keys, places)
    files: list[Path] = []
    seen: dict[Path, str] = {}
    for key, rest in zip(keys, places, strict=True):
        local = _local(path, where.folder, key, rest)
        real = local.resolve()
        if real in seen:
            raise InputError(f"{path}: keys {seen[real][:200]!r} and {key[:200]!r} are one file ({real})")
        seen[real] = key
        files.append(local)
    current = _current_update(path, where) if kind == CUR else ""
    return ExportManifest(path, kind, where.update, _period(body, path, kind), files, current)


def _manifest_path(path: Path) -> Path:
    """`path` made absolute; a link to a manifest is followed (the manifest reads the export it lies
    in), a linked folder above it is not (its name is the period's)."""
    try:
        path = path.absolute()
        return path.resolve() if path.is_symlink() else path
    except (OSError, RuntimeError) as exc:  # a loop of links (RuntimeError before Python 3.13)
        raise InputError(f"{path}: cannot be read ({first_line(exc)})") from None


@dataclass(frozen=True)
class Layout:
    """Where a delivery's files are: in `folder`, the billing period's folder (a CUR's
    `yyyymmdd-yyyymmdd` or `year=YYYY/month=M`, an export's `data/BILLING_PERIOD=YYYY-MM`), whose name
    in a key follows the folders `before` (the report's name or the year's; the export's and `data`),
    either directly or in the folder of the update (`update`: the assemblyId or executionId, "" when
    the manifest names none); only there when the manifest is that update's own copy (`own`)."""

    folder: Path
    before: tuple[str, ...]
    update: str
    own: bool = False

    def place(self, path: Path | str, key: str) -> tuple[str, ...]:
        """The key's path inside the period's folder: (file,) or (update, file); refused in one line
        when the key cannot be a file of this delivery."""
        check_key(path, key)
        parts = PurePosixPath(key).parts
        period, n = self.folder.name, len(self.before)
        found = [
            i for i, p in enumerate(parts[:-1]) if p == period and parts[max(0, i - n) : i] == self.before
        ]
        shown = repr(key[:200])
        if not found:
            named = "/".join([*self.before, period])
            raise InputError(f"{path}: key {shown} is not in the delivery's folder {named}/")
        rest = parts[found[-1] + 1 :]
        flat = len(rest) == 1 and not self.own
        if not flat and (len(rest) != 2 or not self.update or rest[0] != self.update):
            inside = f"the {period}/{self.update}/ folder" if self.own else f"{period}/ or its update folder"
            raise InputError(f"{path}: key {shown} is not in {inside}, where the files of this update are")
        return rest


def layout(path: Path, body: dict[str, Any], kind: str) -> Layout:
    """The layout of the delivery whose manifest is at `path` (its place in a copy of the export,
    which names the folders): refused unless the manifest is where AWS writes it."""
    named = path.name.removesuffix("-Manifest.json") if path.name.endswith("-Manifest.json") else ""
    folder = path.parent
    if kind == CUR:
        update = _text(body.get("assemblyId"))
        if _CUR_MONTH.fullmatch(folder.name) and _CUR_YEAR.fullmatch(folder.parent.name):
            return Layout(folder, (named, folder.parent.name) if named else (folder.parent.name,), "")
        for candidate in (folder, folder.parent):
            if _CUR_PERIOD.fullmatch(candidate.name):
                return Layout(candidate, (named,) if named else (), update, own=candidate != folder)
        raise InputError(
            f"{path}: a CUR manifest is read from its place in a copy of the report, <report>/"
            "<yyyymmdd-yyyymmdd>/ or <report>/year=YYYY/month=M/ (aws s3 sync of the report's prefix)"
        )
    if folder.parent.name != "metadata" or not _EXPORT_PERIOD.fullmatch(folder.name):
        raise InputError(
            f"{path}: a Data Exports manifest is read from its place in a copy of the export, "
            "<export>/metadata/BILLING_PERIOD=YYYY-MM/ (aws s3 sync of the export's prefix)"
        )
    export = folder.parent.parent
    before = (export.name, "data") if named == export.name else ("data",)
    return Layout(export / "data" / folder.name, before, _text(body.get("executionId")))


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


def _local(path: Path, folder: Path, key: str, rest: tuple[str, ...]) -> Path:
    """The file of `key` at `rest` in the period's `folder`: a regular file, reached through no
    symbolic link below that folder (a link could lead out of it, or into another update)."""
    shown = repr(key[:200])
    local = folder.joinpath(*rest)
    try:
        mode = local.stat().st_mode
        real = local.resolve()
        expected = folder.resolve().joinpath(*rest)
    except FileNotFoundError:
        raise InputError(
            f"{path}: the data file of key {shown} is not there ({local}); copy the whole delivery, "
            "keeping its layout"
        ) from None
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{path}: the data file of key {shown} cannot be read ({first_line(exc)})") from None
    if real != expected:
        raise InputError(f"{path}: the data file of key {shown} is a symbolic link ({local} leads to {real})")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: the data file of key {shown} is not a regular file ({local})")
    return local


def check_key(path: Path | str, key: str) -> None:
    """Refuse a key that cannot name a file of a delivery: too long for S3, absolute, with `.`, `..`
    or empty segments, with control characters, or with a segment too long for a file name."""
    if (
        len(key.encode("utf-8", "surrogatepass")) > MAX_KEY
        or key.startswith("/")
        or any(p in ("", ".", "..") for p in key.split("/"))
        or any(ord(c) < 32 or c == "\x7f" for c in key)
        or any(len(p.encode("utf-8", "surrogatepass")) > MAX_NAME for p in key.split("/"))
    ):
        raise InputError(f"{path}: key {key[:200]!r} cannot be a file of this delivery")


def delivery_prefix(key: str, where: Layout) -> str:
    """The key prefix (no trailing `/`) of the period's folder, for a manifest at `key` in its bucket
    laid out as `where` (see `layout`, which read the same folders from the manifest's copy); refused
    when the key itself does not hold those folders (a bucket named like one of them)."""
    folders = PurePosixPath(key).parts[:-1]
    if where.before[-1:] == ("data",):  # Data Exports: <export>/metadata/<period>/, <export>/data/<period>/
        if len(folders) >= 3 and folders[-2] == "metadata":
            return "/".join([*folders[:-2], "data", folders[-1]])
    else:
        depth = len(folders) - (2 if where.own else 1)
        if depth >= 0 and folders[depth] == where.folder.name:
            return "/".join(folders[: depth + 1])
    raise InputError(f"{key[:200]!r}: the key of a manifest where AWS does not write one")


def check_uniform(path: Path | str, keys: list[str], places: list[tuple[str, ...]]) -> None:
    """One delivery's files are all in the period's folder or all in its update's folder: a CUR's
    updates reuse their file names, so a mix would join files of two updates."""
    if len({len(rest) for rest in places}) > 1:
        flat = next(k for k, rest in zip(keys, places, strict=True) if len(rest) == 1)
        raise InputError(
            f"{path}: key {flat[:200]!r} is in the period's folder while others are in the update's "
            "folder: the files of one update are all in one place"
        )


def _current_update(path: Path, where: Layout) -> str:
    """For a manifest read from an update's folder, the update the period folder's manifest of the
    same name names when that is another one (""; also when there is none or it cannot be read)."""
    if not where.own:
        return ""
    current = where.folder / path.name
    try:
        named = _text(read_json(current).get("assemblyId")) if current.is_file() else ""
    except InputError:
        return ""
    return named if named and named != where.update else ""


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

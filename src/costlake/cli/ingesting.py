"""What `costlake ingest` was given to ingest, and how each file's outcome is told."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from costlake.cli.context import out, say, state, warn
from costlake.errors import InputError, first_line

if TYPE_CHECKING:
    from costlake.pipeline.ingest import IngestResult
    from costlake.sources.manifest import ExportManifest


@dataclass
class Given:
    """The files to ingest, whether they are the parts of one delivery, the S3 URI of each file that
    is a downloaded copy, and a warning to give once a file of them has landed."""

    files: list[Path]
    parts: bool
    sources: dict[Path, str] = field(default_factory=dict)
    warning: str = ""


@contextlib.contextmanager
def to_ingest(
    files: list[Path], manifest: str | None, parts: bool, reparse: bool, part_of: str | None
) -> Iterator[Given]:
    """The files `ingest` was given, or those its `--manifest` lists (then always as parts); the
    files of a manifest on S3 are downloaded to a scratch folder, which lives as long as the block."""
    if manifest is None:
        if not files:
            raise InputError(
                "ingest: give the billing files to ingest, or --manifest with an export's manifest"
            )
        yield Given(files, parts)
        return
    if files:
        raise InputError("ingest: give either billing files or --manifest, not both")
    if reparse or part_of is not None:
        raise InputError(
            "ingest: --manifest is a new delivery of the files it lists: drop --reparse / --part-of"
        )
    from costlake.sources.manifest import read_manifest
    from costlake.sources.s3_delivery import is_s3

    if not is_s3(manifest):
        listed = read_manifest(Path(manifest))
        yield _told(manifest, listed)
        return
    with _from_s3(manifest) as (local, sources):
        given = _told(manifest, read_manifest(local))
        given.sources = {path.resolve(): sources[path] for path in sources} | sources
        yield given


@contextlib.contextmanager
def _from_s3(uri: str) -> Iterator[tuple[Path, dict[Path, str]]]:
    """The delivery of the manifest at `uri`, downloaded into a scratch folder for as long as the
    block runs. An error inside it names what it read by its s3:// URI, not by the scratch copy."""
    from costlake.duck import scratch_folder
    from costlake.errors import CostlakeError
    from costlake.lake.connect import s3_client
    from costlake.sources.s3_delivery import fetch_delivery

    try:
        client = s3_client(state.settings())
    except CostlakeError:
        raise
    except Exception as exc:  # noqa: BLE001 - botocore's configuration errors (endpoint, profile, region)
        reason = f"{type(exc).__name__}: {first_line(exc)[:300]}"
        raise InputError(f"{uri}: S3 cannot be reached ({reason})") from None
    with scratch_folder("costlake-s3-") as into:
        try:
            yield fetch_delivery(uri, client, into)
        except CostlakeError as exc:
            copies = {str(into.resolve()), str(into)}
            text = str(exc.args[0]) if exc.args else str(exc)
            for copy in copies:
                text = text.replace(copy + "/", "s3://")
            exc.args = (text,)
            raise


def _told(manifest: str, listed: ExportManifest) -> Given:
    """Says what the manifest lists; its warning waits for a file to land."""
    delivery = f", delivery {listed.delivery}" if listed.delivery else ""
    period = f", billing period {listed.period}" if listed.period else ""
    say(f"{manifest}: {listed.kind} manifest{delivery}{period}: {len(listed.files):,} data file(s)")
    warning = ""
    if listed.current:
        warning = (
            f"warning: the manifest in the billing period's folder names update {listed.current}, the "
            f"report's current one; update {listed.delivery or '?'}, ingested now, is the period's latest "
            "delivery, which replaces the period whole"
        )
    return Given(listed.files, True, warning=warning)


def landed_note(landed: list[IngestResult], total: int, *, parts: bool, part_of: str | None) -> str:
    """What an `ingest` interrupted now leaves, and what to do: `landed` are the files whose raw
    commit landed (each is a batch from then on), of `total` given."""
    done = len(landed)
    if not done:
        return ""
    if done == total:  # the signal came after the last commit: nothing was cut short
        what = "parts" if parts else "files"
        return f"{total} of {total} {what} were ingested before it; nothing is left to do"
    if parts:
        return (
            f"{done} of {total} parts of the delivery of batch {landed[0].first_part} were committed; run "
            "the same command again: it ingests all the parts as a new delivery, which replaces the short "
            "one (until then, runs keep the delivery before it)"
        )
    if part_of is not None:
        return (
            f"{done} of {total} files were added to the delivery of batch {landed[0].first_part}; run the "
            "same command again to add the rest (files already in it are skipped)"
        )
    return (
        f"{done} of {total} files were ingested; run the same command again to ingest the rest (files "
        "already ingested are skipped)"
    )


def print_ingested(r: IngestResult, sources: Mapping[Path, str]) -> None:
    """One file's outcome, printed as soon as it is committed. The file's name and the quarantine
    reasons (which quote values of the file) are data: never markup, never a control sequence. A file
    downloaded from S3 is named by its URI (`sources`)."""

    def shown(path: Path) -> str:
        return sources.get(path) or str(path)

    part = f", a part of the delivery of batch {r.first_part}" if r.first_part else ""
    if r.skipped:
        say(f"{shown(r.path)}: already ingested as batch {r.batch_id}{part}; nothing to do")
        _warn_short(r, shown(r.path))
        return
    replaces = f", replaces batch {r.replaces}" if r.replaces else ""
    say(
        f"{shown(r.path)}: batch {r.batch_id} ({r.source_format}{replaces}{part}): "
        f"{r.accepted:,} accepted, {r.quarantined:,} quarantined"
    )
    for reason, count in r.reasons:
        say(f"  quarantined {count:,} × {reason}")
    if r.restates:
        warn(
            f"warning: {shown(r.path)} restates billing period(s) that "
            f"{', '.join(map(shown, r.restates))} of this same ingest delivered; a period is replaced "
            "whole by its latest delivery, so the earlier file's rows of them no longer count: ingest "
            "the parts of one export with --parts (docs/billing_formats.md, Deliveries in parts)"
        )
    _warn_short(r, shown(r.path))
    if r.superseded_by:
        warn(
            f"warning: {shown(r.path)} joins the delivery of batch {r.first_part}, which a later delivery "
            f"(batch {r.superseded_by}) replaced for billing period(s) it delivers: its rows of them will "
            "not count"
        )
    if r.duplicates:
        out.print(
            f"  warning: {r.duplicates:,} row(s) repeat an event_id of an earlier row in the file; "
            "the latest by (ingestion_ts, row) wins"
        )
    if r.unknown_deletes:
        out.print(
            f"  {r.unknown_deletes:,} delete row(s) of events the lake has no version of: kept, they "
            "remove nothing now (a version older than the delete arriving later stays deleted)"
        )


def _warn_short(r: IngestResult, name: str) -> None:
    if r.short_delivery:
        warn(
            f"warning: {name} is in a delivery short of the parts its command declared (a command "
            "stopped between its commits), which never counts: ingest the whole export again with --parts"
        )

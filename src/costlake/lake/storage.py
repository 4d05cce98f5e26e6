"""Where table files live: a local folder, or an object store (S3) behind PyIceberg's FileIO.

Engines only ever read and write local files. For a remote warehouse the lake downloads the files a
run plans into a local cache (Iceberg data files never change once written, so a cached copy is
always valid), and uploads an engine's staged files under the table location at commit time. Files
of days that are not committed are never uploaded, so a crash leaves nothing remote to clean up but
unreferenced files, which no reader ever plans.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from pyiceberg.io import FileIO

CHUNK = 8 << 20


def is_remote(location: str) -> bool:
    return urlparse(location).scheme not in ("", "file")


def to_local(path: str) -> str:
    parsed = urlparse(path)
    return parsed.path if parsed.scheme == "file" else path


class Storage:
    """File movement between the engines' local files and the warehouse's storage."""

    def __init__(self, io: FileIO | None, local_root: Path, remote: bool) -> None:
        self.io = io
        self.local_root = local_root
        self.remote = remote

    def staging_root(self, table_name: str, table_location: str) -> Path:
        """The local folder engines write a table's new files into (for a local warehouse: the
        table's own data folder, so committing moves nothing)."""
        if not self.remote:
            return Path(to_local(table_location)) / "data"
        return self.local_root / "staging" / table_name

    def readable(self, paths: Sequence[str]) -> list[str]:
        """Local paths for `paths`, downloading remote files into the cache once."""
        if not self.remote:
            return [to_local(p) for p in paths]
        return [str(self._cached(p)) for p in paths]

    def publish(self, files: Sequence[str], table_name: str, table_location: str) -> list[str]:
        """The locations to register for staged `files`: uploaded under the table's data folder for
        a remote warehouse (the staged copy then serves as the cache), unchanged for a local one."""
        if not self.remote:
            return [str(Path(f).resolve()) for f in files]
        root = self.staging_root(table_name, table_location)
        published = []
        for staged in files:
            relative = Path(staged).resolve().relative_to(root.resolve()).as_posix()
            uri = f"{table_location.rstrip('/')}/data/{relative}"
            assert self.io is not None, "a remote warehouse's storage has a FileIO"
            with open(staged, "rb") as source, self.io.new_output(uri).create(overwrite=True) as target:
                shutil.copyfileobj(source, target, CHUNK)
            cached = self.cache_path(uri)
            cached.parent.mkdir(parents=True, exist_ok=True)
            Path(staged).replace(cached)
            published.append(uri)
        return published

    def cache_path(self, uri: str) -> Path:
        digest = hashlib.sha256(uri.encode()).hexdigest()
        return self.local_root / "cache" / digest[:2] / f"{digest}.parquet"

    def _cached(self, uri: str) -> Path:
        target = self.cache_path(uri)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            assert self.io is not None, "a remote warehouse's storage has a FileIO"
            with self.io.new_input(uri).open() as source, open(partial, "wb") as sink:
                shutil.copyfileobj(source, sink, CHUNK)
            partial.replace(target)
        return target

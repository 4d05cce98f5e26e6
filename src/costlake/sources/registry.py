"""The billing formats costlake reads, and the choice of one for a file (named, or detected from its header).

Built explicitly from the source classes, so no source module imports the registry.
"""

from __future__ import annotations

from pathlib import Path

from costlake.errors import InputError
from costlake.sources.base import Source, read_header
from costlake.sources.cur import CurSource
from costlake.sources.focus import FocusSource
from costlake.sources.native import NativeSource

# Detection tries the formats in this order; the first whose header matches wins.
SOURCES: dict[str, type[Source]] = {cls.format: cls for cls in (CurSource, FocusSource, NativeSource)}


def check_format(fmt: str) -> None:
    """Refuse (one line) a format name that is neither `auto` nor a source's, before any file is read:
    a file already ingested is never read again, and its name must not let a typo through."""
    if fmt != "auto" and fmt not in SOURCES:
        known = ", ".join(["auto", *sorted(SOURCES)])
        raise InputError(f"unknown format {fmt!r}; choose one of: {known}")


def source_for(path: Path, fmt: str = "auto") -> Source:
    """The source for `path`: the named format, or the one whose header matches."""
    check_format(fmt)
    header = read_header(path)
    if fmt != "auto":
        cls = SOURCES[fmt]
        if not cls.matches(header):
            _refuse_other_delimiter(path, header)
        return cls()
    for cls in SOURCES.values():
        if cls.matches(header):
            return cls()
    _refuse_other_delimiter(path, header)
    expected = ", ".join(f"{c.format} ({c.key_columns})" for c in SOURCES.values())
    raise InputError(f"{path}: unrecognised billing file layout; expected {expected}")


# Delimiters a spreadsheet or a locale may have used instead of the comma.
_DELIMITERS = {";": "';'-separated", "\t": "tab-separated", "|": "'|'-separated"}


def _refuse_other_delimiter(path: Path, header: list[str]) -> None:
    """A one-line error when the header, read with commas, is really split by another delimiter (on
    average at least one per column read)."""
    for delimiter, looks in _DELIMITERS.items():
        if sum(name.count(delimiter) for name in header) >= len(header):
            raise InputError(f"{path}: looks {looks}; costlake reads comma-separated CSV")

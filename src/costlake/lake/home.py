"""A local warehouse's tables must live in its own folder, and a command that only reads or
publishes needs a warehouse to be there.

Iceberg metadata holds absolute paths. A warehouse folder copied elsewhere (`cp -a` as a backup)
still names the original's files: writing to the copy would put new files into the original's
folder, and maintaining it would delete the original's. Every writing command checks first.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from costlake.errors import InputError
from costlake.lake.storage import is_remote, to_local
from costlake.settings import Settings

# What a URI reads as an escape, a query and a fragment, and what DuckDB's file system reads as `/`
URI_SIGNS = "%?#\\"


def check_path(root: Path) -> None:
    """Refuse (one line) a local warehouse folder whose path holds `URI_SIGNS`: the catalog's SQLite
    URL and the tables' file URIs would read `lake%20A` as `lake A` (and open that warehouse's
    catalog: another lake's money) and `lake?a` as a file `lake` with a query (a catalog no later
    command finds); DuckDB writes `lake\\a` as the folder `lake/a` (a run's files outside the lake).
    Nothing is created."""
    signs = [c for c in URI_SIGNS if c in str(root)]
    if signs:
        raise InputError(
            f"{root}: a warehouse folder's path cannot hold {' or '.join(signs)} (the Iceberg catalog's "
            "URIs read them as escapes, a query or a fragment, DuckDB a backslash as a slash); "
            "choose a folder without them"
        )
    # A URI parser drops a tab or a line break: `lake<TAB>A` wrote its tables into `lakeA`, another lake.
    if any(unicodedata.category(c) == "Cc" for c in str(root)):
        shown = str(root).encode("unicode_escape").decode("ascii")
        raise InputError(
            f"{shown}: a warehouse folder's path cannot hold a control character (a tab, a line break)"
        )


def homes(root: Path) -> set[Path]:
    """The folder a table's location may sit in: the warehouse folder, or, for a lake made before the
    tables' location was the folder as spelt (lake/connect.py), the spelling of it as a file URI
    (`%20` for a space), which PyIceberg took literally on disk: such tables sit beside the folder."""
    return {root, Path(to_local(root.as_uri()))}


def check_home(root: Path, table: str, location: str) -> None:
    """Refuse (one line) a table whose location is not `<warehouse>/<namespace>/<table>`."""
    where = Path(to_local(location))
    if where.name != table or where.parent.parent not in homes(root):
        raise InputError(
            f"{table} lives in {where}, not in the warehouse folder {root} (a copied warehouse? "
            "Iceberg keeps absolute paths): nothing was changed"
        )


def check_exists(settings: Settings) -> None:
    """Refuse (one line) a local warehouse folder that holds no lake (no catalog.db): a mistyped
    `--warehouse` must not become a new, empty lake whose queries answer with nothing. Only the
    commands that bring data in (`ingest`, `tenants load`, the demo) create a warehouse. A remote
    warehouse or an external catalog is not checked here: its catalog says what it holds."""
    if is_remote(settings.warehouse) or settings.catalog != "sql" or settings.catalog_uri:
        return
    root = Path(to_local(settings.warehouse)).resolve()
    catalog = root / "catalog.db"
    if not catalog.is_file() or catalog.stat().st_size == 0:  # an empty file is no catalog either
        raise InputError(
            f"{root}: no costlake warehouse here; check the warehouse setting (--warehouse, "
            "COSTLAKE_WAREHOUSE or costlake.toml): `costlake ingest` creates one"
        )

"""How costlake reaches a warehouse's services: its Iceberg catalog and, for an S3 warehouse, S3 itself.

Credentials are never configured here: PyIceberg, boto3 and PyArrow find them in the standard AWS
chain (environment, profile, instance role). Only the endpoints and the region come from settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from costlake.errors import ConfigError, InputError, LakeError, first_line
from costlake.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table


def open_catalog(settings: Settings, root: Path, remote: bool) -> Catalog:
    """The configured Iceberg catalog. Credentials are never configured here: PyIceberg, boto3 and
    PyArrow find them in the standard AWS chain (environment, profile, instance role)."""
    s3 = {}
    if settings.s3_endpoint:
        s3["s3.endpoint"] = settings.s3_endpoint
    if settings.aws_region:
        s3["s3.region"] = settings.aws_region
    # A local warehouse's tables live in its folder as it is spelt: PyIceberg takes a file URI's path
    # literally (`root.as_uri()` put `lake A`'s tables into a folder `lake%20A` beside it). The
    # signs a URI would read otherwise are refused (home.check_path).
    location = settings.warehouse if remote else f"file://{root}"
    if settings.catalog == "glue":
        from pyiceberg.catalog.glue import GlueCatalog

        glue = {"warehouse": location, **s3}
        if settings.glue_endpoint:
            glue["glue.endpoint"] = settings.glue_endpoint
        if settings.aws_region:
            glue["glue.region"] = settings.aws_region
        return GlueCatalog("costlake", **glue)
    if remote and not settings.catalog_uri:
        raise ConfigError(
            f"warehouse {settings.warehouse}: an object-store warehouse needs catalog = 'glue' or a "
            "catalog_uri (COSTLAKE_CATALOG_URI) for the SQL catalog"
        )
    from pyiceberg.catalog.sql import SqlCatalog
    from sqlalchemy.exc import DatabaseError

    uri = settings.catalog_uri or f"sqlite:///{root / 'catalog.db'}"
    try:
        try:
            return SqlCatalog("costlake", uri=uri, warehouse=location, **s3)
        except DatabaseError as exc:
            # Two first commands on a new warehouse: both saw no catalog tables, the other created them
            # first. They exist now; opening again finds them.
            if "already exists" not in str(exc):
                raise
            return SqlCatalog("costlake", uri=uri, warehouse=location, **s3)
    except DatabaseError as exc:  # a damaged or foreign file, a database that refuses us
        # A catalog_uri may hold a password: name the setting, never its value.
        where = "COSTLAKE_CATALOG_URI" if settings.catalog_uri else str(root / "catalog.db")
        reason = first_line(exc.orig or exc)
        if "database is locked" in reason or "database is busy" in reason:
            # Another process holds a write transaction past SQLite's wait: busy, not damaged.
            raise InputError(
                f"{where}: the Iceberg catalog is busy (another process holds it: {reason}); nothing was "
                "changed, run the command again"
            ) from None
        restore = "" if settings.catalog_uri else "; a damaged catalog.db must be restored from a backup"
        raise LakeError(
            f"{where}: the Iceberg catalog cannot be opened ({reason}); nothing was changed{restore}"
        ) from exc


def load_table(catalog: Catalog, identifier: str) -> Table:
    """`catalog.load_table`, a table whose metadata file cannot be read (cut short, overwritten)
    refused in one line naming the table, where it was an internal error naming a parser's class."""
    from pydantic import ValidationError
    from pyiceberg.exceptions import ValidationError as IcebergValidationError

    try:
        return catalog.load_table(identifier)
    except (ValidationError, IcebergValidationError, ValueError, EOFError) as exc:  # JSON errors: ValueError
        raise LakeError(
            f"table {identifier}: its metadata cannot be read ({first_line(exc)}): the file "
            "may be truncated or damaged (restore it, or the warehouse, from a copy)"
        ) from exc


def s3_client(settings: Settings) -> Any:
    """A boto3 S3 client with the warehouse's endpoint (`s3_endpoint`) and region (`aws_region`), the
    ones the catalog's FileIO uses. boto3 (extra `aws`) is imported here, on first use."""
    try:
        import boto3
    except ImportError as exc:  # pragma: no cover - the `aws` extra is missing
        raise ConfigError("an S3 warehouse needs boto3: install costlake[aws]") from exc
    return boto3.client("s3", endpoint_url=settings.s3_endpoint, region_name=settings.aws_region)

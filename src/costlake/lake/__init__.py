"""Iceberg tables: schemas, the warehouse (catalog + storage) and atomic partition commits."""

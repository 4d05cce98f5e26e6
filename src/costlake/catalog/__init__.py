"""The read side: DuckDB views over the lake, cut to a tenant or not (`views`), typed tenant-scoped
readers (`readers`, `filters`), and Athena/Glue, Trino and Spark DDL (`ddl`). See docs/catalog.md."""

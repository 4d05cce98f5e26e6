"""SQL over the lake for other engines: Athena/Glue, Trino and Spark DDL (`catalog.ddl`)."""

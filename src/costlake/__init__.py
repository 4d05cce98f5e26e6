"""costlake: a finance-grade cloud-cost lake on Apache Iceberg."""

__version__ = "0.1.0"

"""`costlake serve`: the HTTP API over the tenant-scoped readers and the explanation layer."""

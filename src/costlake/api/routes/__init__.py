"""The API's routers: thin over the tenant-scoped readers (catalog/readers.py) and the explanation
layer (rag/explain.py); every one takes its tenant from `auth.caller`."""

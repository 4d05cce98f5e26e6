"""Alerts: signed webhooks (Standard Webhooks) for new and resolved anomalies and for operations events.

`store.py` keeps the alerts and their delivery log (SQLite, beside the API keys), `secret_file.py` the
signing secrets (a 0600 file), `events.py` decides what is due, `payload.py` writes the bodies,
`signing.py` signs them, `deliver.py` posts them with bounded retries and `send.py` runs the lot.
"""

"""Stage 1 normalize + dedupe, stage 2 account-service-day, stage 3 account-day; and their orchestration.

The stage modules are pure: each builds SQL from the names of its input relations and returns the
text. Orchestration (ingest.py, run.py) registers inputs with an engine, writes and commits.
"""

"""spark-submit jobs/run_pipeline.py --warehouse W [--from D --to D]: the three stages in one run,
the same as `costlake --engine spark run` (or `backfill`)."""

import _common

if __name__ == "__main__":
    _common.main(__doc__ or "", stages=None)

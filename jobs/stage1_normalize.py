"""spark-submit jobs/stage1_normalize.py --warehouse W [--from D --to D]: stage 1 only (normalize +
dedupe the new batches, or a window); stage 2 and 3 jobs pick its days up."""

import _common

if __name__ == "__main__":
    _common.main(__doc__ or "", stages=["normalized_billing_events"])

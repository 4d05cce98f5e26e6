"""spark-submit jobs/stage3_publish_daily_account_cost.py --warehouse W [--from D --to D]: stage 3
(account-day) for the days stage 2 changed, then dimensions, publish log and the run manifest."""

import _common

if __name__ == "__main__":
    _common.main(__doc__ or "", stages=["daily_account_cost"])

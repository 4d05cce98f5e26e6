"""spark-submit jobs/stage2_aggregate_daily_cost.py --warehouse W [--from D --to D]: stage 2 only
(account-service-day) for the days stage 1 changed."""

import _common

if __name__ == "__main__":
    _common.main(__doc__ or "", stages=["account_service_day_cost"])

"""Workers and cost rates from the HCM into the PSA, and each project's planned cost and margin.

``margin`` holds the pure arithmetic: hours allocated per day times the cost rate effective that day,
converted into the project's currency with the rate effective that day, against the billing schedule.
"""

WORKER_SYNC_FLOW = "worker-sync"
MARGIN_FLOW = "project-margin"

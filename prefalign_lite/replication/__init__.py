"""The replication: configs, the resumable papermill pipeline, metrics files, the fairness checks,
the verdict rule and the report of the papers' tables."""

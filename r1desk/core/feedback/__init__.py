"""The feedback loop (issue 16): a fastText classifier learnt from the auditors' reviews (dataset, split,
model, versions) and periodic review (periods, report). The guard side is ``core.guard.feedback``."""

"""``audit batch``: many audits as parallel tasks (Ray or in-process), their manifest, workers and shared outputs."""

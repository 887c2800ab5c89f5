"""The machinery of ``grpo train``: the run folder, held-out accuracy, and fault handling."""

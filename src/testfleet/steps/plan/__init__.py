"""The `plan` step: an agent's share of a test plan run, every instance at once."""

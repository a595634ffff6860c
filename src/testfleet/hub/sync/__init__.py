"""The sync service: barriers, signals and topics of plan instances, scoped by run."""

"""The `testfleet` command line: a thin client of the HTTP API, plus the server commands."""

"""`python -m testfleet` is the `testfleet` command."""

from testfleet.cli.main import main

main()

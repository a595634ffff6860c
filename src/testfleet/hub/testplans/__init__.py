"""Test plans (Testground): the catalog, compositions, builds, placement, runs and outcomes."""

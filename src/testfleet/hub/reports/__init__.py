"""Test reports: JUnit XML artifacts read into test cases."""

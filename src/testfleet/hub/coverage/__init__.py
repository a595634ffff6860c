"""Coverage: Drill4J sessions on probes, their data, reports and test impact analysis."""

"""Routing benchmark suites (labelled queries and route manifests that are not product agents)."""

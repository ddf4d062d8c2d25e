"""Enrichment data: the literal pattern set (``patterns.json``) and the known-malicious seed advisories."""

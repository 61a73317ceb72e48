"""Governance data: records as stored (and as written in bundles) and their evaluator models, the in-memory
cache the ingestion path reads, and `mandate apply` for governance bundles."""

"""Governance, pure: bundles as written (`bundle`), records as stored (`records`), the in-memory governance the
ingestion path reads (`cache`), which spec version is in force (`in_force`), and an apply's plan (`plan`). No I/O:
the SQL is db/governance.py, and the transaction of `mandate apply` is `mandate.apply`."""

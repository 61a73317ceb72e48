"""Database access: where the database is (`url`), the embedded server, client tools, connections."""

"""The application: composition root, supervisor, services, stores, PostgreSQL, HTTP, CLI."""

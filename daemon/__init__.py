"""e911d: the application (composition root, sessions, checks, directory, alerts, db, http)."""

__version__ = "0.1.0"

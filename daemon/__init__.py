"""The application, one folder per layer; imports point down only.

``commands`` (the CLI) → ``runtime`` (the process) → ``services`` (the jobs) →
``store`` (PostgreSQL) and ``kafka`` (outbound clients) → ``core`` (pure).
"""

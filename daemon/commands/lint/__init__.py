"""``e911d directory lint``: what in a directory keeps e911d from locating anyone.

The rules (:mod:`.rules`) are pure and run on the import's own model of a directory
file (:class:`~e911d.daemon.commands.directory_file.DirectoryFile`); the command
(:mod:`.command`) builds that model from a file or, exactly as ``directory export``
does, from the database, so that both give the same findings for the same directory.
"""

from e911d.daemon.commands.lint.findings import Code, Finding, Severity
from e911d.daemon.commands.lint.rules import lint

__all__ = ["Code", "Finding", "Severity", "lint"]

"""``e911d directory import FILE`` and ``e911d directory export``: the directory as a file.

A file holds the entities of the directory events (docs/spec.md#directory-events-topic) and obeys
their rules:
every field is checked against the event structs of :mod:`consumers.wire`, and each
entity is finally decoded by those structs and turned into a change by the same code
as an event, so a file can never carry what an event could not. On top of that it
does what an operator's hand-written file needs: every error is reported at once with
its path, unknown and repeated keys are refused (a typo must not be silently ignored),
references must name a location, and hostile YAML (anchors, aliases, huge files) is
refused before it costs memory.

An import is one transaction. It writes only the entities that differ from what the
database holds, through the same projector as the events
(:func:`daemon.store.directory.apply_change`): database triggers tell running daemons about
every write, so an unchanged row must not be written again.

The modules, each depending only on those before it: :mod:`.files` (reading and
parsing), :mod:`.rules` (the field rules and the wording of issues), :mod:`.validation`,
:mod:`.stored` (what the database holds), :mod:`.plan` (the writes of an import),
:mod:`.export` and :mod:`.commands`. This package re-exports their public names.
``--dry-run --impact`` (docs/directory.md#impact-before-import) is :mod:`.impact_state`
(the directory after the plan), :mod:`.impact_run` (deciding the live sessions) and
:mod:`.impact_render`.
"""

from e911d.daemon.commands.directory_file.command import (
    EXIT_FAILED,
    EXIT_OK,
    export_command,
    import_command,
)
from e911d.daemon.commands.directory_file.export import Exported, export_document, render
from e911d.daemon.commands.directory_file.field_rules import Issue
from e911d.daemon.commands.directory_file.files import (
    FORMATS,
    MAX_FILE_BYTES,
    FileProblem,
    account_ids,
    file_format,
    load,
    parse,
    read_text,
)
from e911d.daemon.commands.directory_file.plan import KINDS, Plan, Step, make_plan
from e911d.daemon.commands.directory_file.validation import (
    AccountEntry,
    DirectoryFile,
    Validated,
    validate,
)
from e911d.daemon.store.directory_rows import Form, Key, Row, Rows, Stored, read_rows

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "FORMATS",
    "KINDS",
    "MAX_FILE_BYTES",
    "AccountEntry",
    "DirectoryFile",
    "Exported",
    "FileProblem",
    "Form",
    "Issue",
    "Key",
    "Plan",
    "Row",
    "Rows",
    "Step",
    "Stored",
    "Validated",
    "account_ids",
    "export_command",
    "export_document",
    "file_format",
    "import_command",
    "load",
    "make_plan",
    "parse",
    "read_rows",
    "read_text",
    "render",
    "validate",
]

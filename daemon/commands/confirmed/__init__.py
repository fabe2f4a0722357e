"""``e911d directory confirmed``: the networks users confirmed, listed and forgotten
(docs/spec.md#networks-a-user-confirmed).

An administrator or a support engineer reads what e911d remembers about a user (which
networks, which location, since when, until when) and forgets it on request: a user
who says "that was not my home" or asks what is stored about them. The modules:
:mod:`.render` (text and ``--json``) and :mod:`.command` (the arguments, the read or
the delete).
"""

from e911d.daemon.commands.confirmed.command import confirmed_command, id_argument
from e911d.daemon.commands.confirmed.render import render_json, render_text

__all__ = ["confirmed_command", "id_argument", "render_json", "render_text"]

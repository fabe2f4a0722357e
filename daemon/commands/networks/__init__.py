"""``e911d report networks``: the networks nobody configured, with what users confirmed
on them (docs/spec.md#networks-nobody-configured).

The modules, each depending only on those before it: :mod:`.agreement` (the values,
agreement, the order; pure), :mod:`.recorded` (the one read-only snapshot,
``daemon/store/sql/unconfigured.sql``), :mod:`.render` (text, JSON, CSV),
:mod:`.suggestions` (the suggested groups as a directory file) and :mod:`.command`.
docs/report.md defines every figure.
"""

from e911d.daemon.commands.networks.command import min_users_argument, networks_command

__all__ = ["min_users_argument", "networks_command"]

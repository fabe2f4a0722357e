"""The two directories an impact compares, per account: what the database holds, and
what it would hold after the import.

The second is the first with the import's plan applied in memory, change by change,
as the projector (:func:`daemon.store.directory.apply_change`) applies them to the
tables, and read back into values as the checks load them
(:func:`daemon.store.directory.load_accounts`): an upsert replaces the whole entity,
a delete removes it and nothing else (a user assigned to a deleted location keeps the
dangling id, which a check treats as no location). An account whose locations and
groups the plan leaves alone keeps the very same compiled snapshot, and a user it
leaves alone the very same value: the impact then knows, without deciding twice,
that such a session's next check cannot change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from e911d.daemon.core.evaluation import AccountDirectory
from e911d.daemon.core.events import (
    AccountUpserted,
    DirectoryChange,
    IpGroupDeleted,
    IpGroupUpserted,
    LocationDeleted,
    LocationUpserted,
    UserDeleted,
    UserUpserted,
)
from e911d.daemon.core.model import Account, IpGroup, Location, User
from e911d.daemon.store.directory import LoadedAccount, bssids_of, switches_doc, switches_of


@dataclass(frozen=True, slots=True)
class AccountState:
    """Everything a check of this account's sessions reads besides the session: the
    account (None: unknown), its compiled directory (None when the account is unknown,
    as the checks pass it) and its users by id."""

    account: Account | None
    directory: AccountDirectory | None
    users: Mapping[str, User]


@dataclass(frozen=True, slots=True)
class Sides:
    account_id: str
    now: AccountState
    after: AccountState

    @property
    def same_account(self) -> bool:
        """Whether only a user change can make a session decide differently."""
        return self.now.directory is self.after.directory and self.now.account == self.after.account


def location_of_change(change: LocationUpserted) -> Location:
    coords = change.coordinates
    return Location(
        change.location_id,
        change.name,
        None if coords is None else (float(coords.lat), float(coords.lon)),
    )


def ip_group_of_change(change: IpGroupUpserted) -> IpGroup:
    """The group as the checks would load it back from the rows the projector writes
    (networks without repeats, signals normalised as stored)."""
    return IpGroup(
        change.ip_group_id,
        change.name,
        change.location_id,
        tuple(dict.fromkeys(change.networks)),
        bssids=bssids_of(change.bssids),
        switches=switches_of(switches_doc(change.switches)),
        locating=change.locating,
    )


def current_state(
    account: Account | None, loaded: LoadedAccount, users: Mapping[str, User]
) -> AccountState:
    return AccountState(account, loaded.directory if account is not None else None, users)


def after_state(
    account_id: str,
    account: Account | None,
    loaded: LoadedAccount,
    users: Mapping[str, User],
    changes: Iterable[DirectoryChange],
) -> AccountState:
    """The account once ``changes`` (the plan's, in order) are applied."""
    locations: dict[str, Location] | None = None
    groups: dict[str, IpGroup] | None = None
    new_users: dict[str, User] | None = None
    for change in changes:
        if isinstance(change, AccountUpserted):
            account = Account(account_id, change.e911_recommendations)
        elif isinstance(change, LocationUpserted | LocationDeleted):
            if locations is None:
                locations = dict(loaded.directory.locations)
            if isinstance(change, LocationUpserted):
                locations[change.location_id] = location_of_change(change)
            else:
                locations.pop(change.location_id, None)
        elif isinstance(change, IpGroupUpserted | IpGroupDeleted):
            if groups is None:
                groups = {g.ip_group_id: g for g in loaded.ip_groups}
            if isinstance(change, IpGroupUpserted):
                groups[change.ip_group_id] = ip_group_of_change(change)
            else:
                groups.pop(change.ip_group_id, None)
        elif isinstance(change, UserUpserted | UserDeleted):
            if new_users is None:
                new_users = dict(users)
            if isinstance(change, UserUpserted):
                new_users[change.user_id] = User(
                    account_id, change.user_id, change.e911_recommendations, change.e911_location_id
                )
            else:
                new_users.pop(change.user_id, None)
        else:  # an import plans no other change
            raise AssertionError(f"unexpected change in a plan: {type(change).__name__}")
    directory = loaded.directory
    if locations is not None or groups is not None:
        directory = AccountDirectory(
            account_id,
            (locations if locations is not None else loaded.directory.locations).values(),
            groups.values() if groups is not None else loaded.ip_groups,
        )
    return AccountState(
        account,
        directory if account is not None else None,
        new_users if new_users is not None else users,
    )

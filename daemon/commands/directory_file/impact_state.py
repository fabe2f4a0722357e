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

from e911d.daemon.core.confirmed_network import UserConfirmed
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
    as the checks pass it), its users by id, and the networks each user confirmed (by
    user id; users with none are absent)."""

    account: Account | None
    directory: AccountDirectory | None
    users: Mapping[str, User]
    confirmed: Mapping[str, UserConfirmed]


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
    account: Account | None,
    loaded: LoadedAccount,
    users: Mapping[str, User],
    confirmed: Mapping[str, UserConfirmed],
) -> AccountState:
    return AccountState(
        account, loaded.directory if account is not None else None, users, confirmed
    )


def _confirmed_after(
    confirmed: Mapping[str, UserConfirmed],
    deleted_users: set[str],
    deleted_locations: set[str],
) -> Mapping[str, UserConfirmed]:
    """The entries left once the import deletes users and locations: deleting either
    deletes its entries (docs/spec.md#networks-a-user-confirmed). A user the plan
    leaves alone keeps the very same value."""
    if not deleted_users and not deleted_locations:
        return confirmed
    out: dict[str, UserConfirmed] = {}
    for user_id, held in confirmed.items():
        if user_id in deleted_users:
            continue
        kept = [e for e in held.entries if e.location_id not in deleted_locations]
        if len(kept) == len(held):
            out[user_id] = held
        elif kept:
            out[user_id] = UserConfirmed(held.account_id, user_id, kept, held.prefixes)
    return out


def after_state(
    account_id: str,
    account: Account | None,
    loaded: LoadedAccount,
    users: Mapping[str, User],
    confirmed: Mapping[str, UserConfirmed],
    changes: Iterable[DirectoryChange],
) -> AccountState:
    """The account once ``changes`` (the plan's, in order) are applied."""
    locations: dict[str, Location] | None = None
    groups: dict[str, IpGroup] | None = None
    new_users: dict[str, User] | None = None
    deleted_users: set[str] = set()
    deleted_locations: set[str] = set()
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
                deleted_locations.add(change.location_id)
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
                deleted_users.add(change.user_id)
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
        _confirmed_after(confirmed, deleted_users, deleted_locations),
    )

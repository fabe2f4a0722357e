"""What the root started, and the order in which it drains.

The root hands this to the supervisor at the stop; tests and operators' tools read
the services from it (``app.services.relay``).
"""

from __future__ import annotations

from dataclasses import dataclass

from e911d.consumers.loop import ConsumerLoop
from e911d.daemon.runtime.supervisor import DrainStep
from e911d.daemon.services.checks import Checks
from e911d.daemon.services.housekeeping import Housekeeping
from e911d.daemon.services.ingest import Ingest
from e911d.daemon.services.reevaluation import Reevaluation
from e911d.daemon.services.relay import Relay
from e911d.daemon.store.notify import DirectoryListener
from e911d.schedulers import Ticker


@dataclass(frozen=True, slots=True)
class Services:
    """What the root started, for the drain and for operators' and tests' eyes."""

    ingest: Ingest
    checks: Checks
    reevaluation: Reevaluation
    relay: Relay
    housekeeping: Housekeeping
    consumer: ConsumerLoop
    listener: DirectoryListener
    ticker: Ticker

    def drain_steps(self) -> list[DrainStep]:
        """Stop fetching first, then no new ticks, then in-flight work, then publish."""

        async def stop_ticking() -> None:
            self.ticker.shutdown()

        return [
            DrainStep("consumer", self.consumer.drain),
            DrainStep("ingest", self.ingest.drain),
            DrainStep("ticker", stop_ticking),
            DrainStep("checks", self.checks.drain),
            DrainStep("reevaluation", self.reevaluation.drain),
            DrainStep("housekeeping", self.housekeeping.drain),
            DrainStep("relay", self.relay.drain),
        ]

"""Rebuild the delivery index (``broker.router.deliveries``) from the ``deliveries`` topic at
start and keep it current, as the consent view is kept: no database, state rebuilt from topics.

Only records the router sealed and signed itself are applied: any party can seal a message for
the router, so a record on this topic from anyone else (a party with write access it should not
have) could otherwise add a recipient to another party's message or pose as its sender.
"""

from __future__ import annotations

from broker.router.consent_log import ConsentLog
from broker.router.deliveries import INDEX_EVENT, DeliveryEntry
from broker.trust import Opened
from schemas import topics


class DeliveryLog(ConsentLog):
    topic = topics.DELIVERIES

    def _apply(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """A record this process wrote and applied itself comes back on the topic: nothing to
        open or fold again (a verify, a decryption and a JSON read per routed message, about
        a tenth of a running router's CPU). Anything else is opened and checked as before."""
        if self.state.deliveries.echo(bytes(value)):
            self.applied += 1
            return
        super()._apply(key, value, headers)

    def _fold(self, opened: Opened) -> None:
        router = self.state.keys.party_id
        if opened.meta.sender != router or opened.meta.event != INDEX_EVENT:
            raise ValueError("a delivery index record not written by the router")
        entry = DeliveryEntry.from_json(opened.payload)
        if opened.meta.pseudonym != entry.key:
            raise ValueError("the record's key is not its message")
        self.state.deliveries.apply(entry)

"""The provider adapter process: deliveries from the router → FHIR JSON files in the outbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.common.outbox import Outbox
from adapters.common.party import PartyClient
from adapters.common.runtime import AdapterRuntime
from broker.config import Settings
from broker.trust import Opened
from schemas.messaging import ParsedMessage


class ProviderAdapter:
    def __init__(
        self,
        settings: Settings,
        client: PartyClient,
        outbox_dir: Path,
        *,
        on_event: Any = None,
        session_timeout_ms: int = 6000,
    ) -> None:
        self.client = client
        self.outbox = Outbox(outbox_dir)
        self.runtime = AdapterRuntime(
            settings,
            client,
            self.outbox,
            self._delivered,
            on_event=on_event,
            session_timeout_ms=session_timeout_ms,
        )

    @property
    def party_id(self) -> str:
        return self.client.party_id

    async def _delivered(self, opened: Opened, msg: ParsedMessage) -> None:
        # The EPD receives exactly what the router allowed this provider to see, as FHIR JSON.
        body = json.dumps(msg.bundle, indent=2, ensure_ascii=False) + "\n"
        self.outbox.write(msg.meta.message_id, body.encode())
        self.runtime.event(
            "delivered", msg.meta.message_id, f"{msg.meta.event.value} from {msg.meta.sender}"
        )

    async def start(self) -> None:
        await self.runtime.start()

    async def stop(self) -> None:
        await self.runtime.stop()

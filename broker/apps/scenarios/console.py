"""What flows, printed for a person watching ``ketenbus up``: ids, parties and reasons only —
never a BSN, a name or clinical text (facts and events carry none)."""

from __future__ import annotations

from datetime import datetime

from rich.console import Console

from adapters.common.runtime import AdapterEvent
from broker.router.facts import Fact, FactKind

STYLE = {
    FactKind.PERMIT: "green",
    FactKind.DENY: "bold red",
    FactKind.REFUSAL: "bold red",
    FactKind.CONSENT_CHANGE: "cyan",
    FactKind.DUPLICATE: "yellow",
    FactKind.DELIVERY: "green",
}
EVENT_STYLE = {
    "sent": "blue",
    "delivered": "green",
    "refused": "bold red",
    "invalid": "magenta",
    "response": "green",
}


class FlowConsole:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    def _t(self) -> str:
        return datetime.now().strftime("%H:%M:%S")

    def fact(self, f: Fact) -> None:
        style = STYLE.get(f.kind, "white")
        mid = (f.message_id or "-")[:8]
        if f.kind is FactKind.PERMIT:
            text = (
                f"{f.event} {mid} → {f.recipient} ({f.recipient_role}) "
                f"purpose {f.purpose}, basis {f.legal_basis}"
                + (f", consent {f.consent_id}" if f.consent_id else "")
                + f" [{', '.join(sorted(f.categories))}]"
            )
        elif f.kind is FactKind.DENY:
            text = f"{f.event} {mid} ✗ {f.recipient} ({f.recipient_role}): {f.reason} — {f.detail}"
        elif f.kind is FactKind.REFUSAL:
            what = f.event or "message"
            text = f"{what} {mid} from {f.sender or '?'} refused: {f.reason} → {f.topic}"
        elif f.kind is FactKind.CONSENT_CHANGE:
            text = f"consent {f.consent_id} from {f.sender}: {f.reason} ({f.detail})"
        else:
            text = f"{f.event} {mid}: {f.reason}"
        self.console.print(
            f"[dim]{self._t()}[/] [bold]{'router':<22}[/] [{style}]{f.kind.value:<16}[/] {text}"
        )

    def adapter(self, e: AdapterEvent) -> None:
        style = EVENT_STYLE.get(e.kind, "white")
        mid = (e.message_id or "-")[:8]
        self.console.print(
            f"[dim]{self._t()}[/] [bold]{e.party:<22}[/] [{style}]{e.kind:<16}[/] {mid} {e.text}"
        )

    def note(self, text: str) -> None:
        self.console.print(f"[dim]{self._t()}[/] {text}")

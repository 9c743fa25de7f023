"""Plain tables for benchmark output: aligned text for the terminal, Markdown for the docs."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

NOTE_WIDTH = 118  # a note wraps to fit a 120-column terminal


@dataclass
class Table:
    """One benchmark's result: a title, column names, rows of preformatted cells, and notes."""

    key: str  # stable identifier (tests and --only select by it)
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.key}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([str(c) for c in cells])

    def row_labels(self) -> list[str]:
        return [r[0] for r in self.rows]

    def text(self) -> str:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

        def line(cells: list[str]) -> str:
            # first column left-aligned (labels), the rest right-aligned (figures)
            parts = [cells[0].ljust(widths[0])]
            parts += [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return "  ".join(parts).rstrip()

        out = [self.title, line(self.columns), "  ".join("-" * w for w in widths)]
        out += [line(r) for r in self.rows]
        for n in self.notes:
            out += textwrap.wrap(
                n,
                NOTE_WIDTH,
                initial_indent="  * ",
                subsequent_indent="    ",
                break_long_words=False,
                break_on_hyphens=False,
            )
        return "\n".join(out)

    def markdown(self) -> str:
        out = [f"**{self.title}**", ""]
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("| " + " | ".join(["---"] + ["---:"] * (len(self.columns) - 1)) + " |")
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


def rate(value: float) -> str:
    """A rate for a table: thousands separated, no decimals below 10 only when needed."""
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def micros(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f}"


def millis(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f}"


def ratio(value: float) -> str:
    return f"{value:.2f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f} %"

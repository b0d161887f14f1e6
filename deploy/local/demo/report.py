"""What the demo shows: the progress display, the services' warnings above it, the QĐ 766
indicators, the lateness board, the check, and the artifact it writes."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from deploy.local.demo.checks import Check
from deploy.local.demo.traffic import traits
from shared.logs import TraceContextFilter, json_formatter

console = Console() if sys.stdout.isatty() else Console(width=160)


class ConsoleLogHandler(logging.Handler):
    """The services' JSON logs (warnings and errors), printed above the progress display."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(json_formatter("demo-month"))
        self.addFilter(TraceContextFilter())

    def emit(self, record: logging.LogRecord) -> None:
        console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)


def month_progress() -> Progress:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("days  {task.fields[counts]}"),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=console)


def _short(name: str | None, code: str) -> str:
    return (name or code).replace("Ủy ban nhân dân", "UBND")


def indicators_table(indicators: dict[str, Any], title: str) -> Table:
    columns = {
        "received": "received",
        "done_early": "done early",
        "done_on_time": "on time",
        "done_late": "late",
        "in_progress_within_due": "open ≤ due",
        "in_progress_past_due": "open > due",
        "paused": "paused",
        "paused_past_due": "paused > due",
        "withdrawn": "withdrawn",
        "refused": "refused",
        "apologies_issued": "apologies",
        "apologies_late": "apology late",
        "apologies_missing": "no apology",
    }
    table = Table(title=title, title_justify="left")
    table.add_column("competent unit")
    for label in columns.values():
        table.add_column(label, justify="right")
    for unit in indicators["units"]:
        name = _short(unit["unit_name"], unit["unit_code"])
        table.add_row(name, *(str(unit[key]) for key in columns))
    table.add_section()
    total = indicators["total"]
    table.add_row("total", *(str(total.get(key, 0)) for key in columns), style="bold")
    return table


DUTIES = {
    "apologies_on_time": "apologies on time",
    "apologies_late": "apologies late",
    "apologies_missing": "apologies missing",
    "replies_late": "replies late",
    "replies_awaited_past_due": "replies overdue now",
}


def duties(indicators: dict[str, Any], board: dict[str, Any]) -> dict[str, Any]:
    """Per unit: its apologies as the competent unit (indicators), its late replies as a
    consulted unit (board), and the totals."""
    rows: dict[str, dict[str, Any]] = {}
    for source in (indicators["units"], board["units"]):
        for unit in source:
            row = rows.setdefault(
                unit["unit_code"],
                {"unit_code": unit["unit_code"], "unit_name": unit["unit_name"]}
                | dict.fromkeys(DUTIES, 0),
            )
            row.update({key: unit[key] for key in DUTIES if key in unit})
    units = [row for row in rows.values() if any(row[key] for key in DUTIES)]
    units.sort(key=lambda row: [-row[key] for key in DUTIES] + [row["unit_code"]])
    total = {key: sum(row[key] for row in rows.values()) for key in DUTIES}
    return {"units": units, "total": total}


def duties_table(table_of: dict[str, Any], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("unit")
    for label in DUTIES.values():
        table.add_column(label, justify="right")
    table.add_column("trait (traffic model)")
    for row in table_of["units"]:
        unit = traits(row["unit_code"])
        trait = ", ".join(
            label
            for label, has in (
                ("replies late", unit.replies_late),
                ("ignores due-soon", unit.ignores_due_soon),
            )
            if has
        )
        table.add_row(
            _short(row["unit_name"], row["unit_code"]),
            *(str(row[key]) for key in DUTIES),
            trait,
        )
    table.add_section()
    total = table_of["total"]
    table.add_row("total", *(str(total[key]) for key in DUTIES), "", style="bold")
    return table


def board_tables(board: dict[str, Any], title: str) -> tuple[Table, Table]:
    units = Table(title=f"{title}: steps per unit", title_justify="left")
    for label in ("unit", "early", "on time", "late", "late rate", "held now", "held past due"):
        units.add_column(label, justify="left" if label == "unit" else "right")
    for row in board["units"]:
        rate = row["late_rate"]
        units.add_row(
            _short(row["unit_name"], row["unit_code"]),
            str(row["early"]),
            str(row["on_time"]),
            str(row["late"]),
            "–" if rate is None else f"{rate:.0%}",
            str(row["held"]),
            str(row["held_past_due"]),
        )
    officials = Table(title=f"{title}: officials with late steps", title_justify="left")
    for label in ("unit", "official", "steps", "late"):
        officials.add_column(label, justify="right" if label in ("steps", "late") else "left")
    for row in board["officials"]:
        officials.add_row(
            _short(row["unit_name"], row["unit_code"]),
            row["official"],
            str(row["steps"]),
            str(row["late"]),
        )
    return units, officials


def print_check(check: Check) -> None:
    mark = "[green]OK" if check.ok else "[red]MISMATCH"
    advance = len(check.in_advance)
    console.print(
        f"[bold]late dossiers {check.late}[/] (QĐ 766: done late {check.done_late}"
        f" + in progress past due {check.in_progress_past_due})"
        f" · found overdue by the deadline service {check.overdue_detected}"
        f" · apologies issued {check.apologies} ({check.apologies - advance} for late dossiers"
        f" + {advance} in advance: signed before the due date, not due yet)"
        f" · [bold]late without apology {len(check.late_without_apology)}[/]"
        f" (indicator: {check.late_without_apology_indicator})  {mark}"
    )
    console.print(
        f"consultations replied {check.replies}, late {check.replies_late}"
        f" (board: {check.replies_late_board}, indicator consultations_replied_late:"
        f" {check.replies_late_indicator})"
    )
    console.print(
        f"of the late dossiers, {len(check.planned_late)} were held past their due time by a"
        f" unit as planned, {len(check.unplanned_late)} were late otherwise"
    )
    for problem in check.problems:
        console.print(f"[red]  ✗ {problem}", highlight=False)
    for note in check.notes:
        console.print(f"[yellow]  ! {note}", highlight=False)


def write_artifact(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, ensure_ascii=False, indent=2, default=str))

"""What ``demo`` and ``run`` show on the terminal while they run: a live table of the stations on a
terminal, else one progress line every ``PROGRESS_EVERY_S``. Times are the site's local time with
its UTC offset (``factory.calendar.timezone``), as the people on the floor read the clock.
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.live import Live
from rich.table import Table

from twin.shadow.live_twin import Snapshot

PROGRESS_EVERY_S = 5.0  # wall seconds between two progress lines when stderr is not a terminal

STATE_STYLE = {"PRODUCING": "green", "SETUP": "blue", "DOWN": "bold red", "STARVED": "yellow", "BLOCKED": "yellow",
               "IDLE": "yellow", "PLANNED_STOP": "grey50", "NO_SHIFT": "grey50", "UNKNOWN": "magenta"}


def site_time(t: float, timezone: str) -> str:
    """``2026-03-02 14:00:00+08:00``: epoch seconds as the site's wall clock, with its offset."""
    return datetime.fromtimestamp(t, ZoneInfo(timezone)).isoformat(sep=" ", timespec="seconds")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def status_table(snap: Snapshot, timezone: str) -> Table:
    """The operator's terminal view: each station's state and its shift-so-far figures."""
    s = snap.shift.site
    table = Table(title=f"{site_time(snap.now, timezone)}  shift {snap.shift_name}: OEE {_pct(s.oee)}, "
                        f"good {s.good:.0f}, {s.energy_kwh or 0:.1f} kWh; samples {snap.samples['used']} used, "
                        f"{snap.samples['rejected']} rejected"
                        + (f"; sources down: {', '.join(sources_down(snap))}" if sources_down(snap) else ""),
                  title_justify="left")
    for col in ("station", "state", "OEE", "avail.", "perf.", "quality", "good", "kWh"):
        table.add_column(col, justify="left" if col in ("station", "state") else "right")
    for w in snap.shift.stations:
        unit = f"{w.line}/{w.station}"
        state = snap.states.get(unit, "UNKNOWN")
        table.add_row(unit, f"[{STATE_STYLE.get(state, '')}]{state}[/]", _pct(w.oee), _pct(w.availability),
                      _pct(w.performance), _pct(w.quality), f"{w.good:.0f}",
                      "-" if w.energy_kwh is None else f"{w.energy_kwh:.1f}")
    return table


def progress_line(snap: Snapshot, timezone: str) -> str:
    s = snap.shift.site
    down = [u for u, st in snap.states.items() if st in ("DOWN", "UNKNOWN")]
    lost = sources_down(snap)
    return (f"{site_time(snap.now, timezone)} shift {snap.shift_name}: OEE {_pct(s.oee)}, good {s.good:.0f}, "
            f"{s.energy_kwh or 0:.1f} kWh; samples {snap.samples['used']}/{snap.samples['received']}"
            + (f"; down/unknown: {', '.join(down)}" if down else "")
            + (f"; sources down: {', '.join(lost)}" if lost else ""))


def sources_down(snap: Snapshot) -> list[str]:
    """The sources whose connection is down now, by name (their gaps are in the summary)."""
    return sorted(name for name, state in snap.connections.items() if state != "up")


class TerminalView:
    """A twin subscriber: the live table on a terminal, else a progress line now and then; nothing
    when ``enabled`` is false. ``start()``/``stop()`` bracket the run."""

    def __init__(self, console: Console, timezone: str, *, enabled: bool = True) -> None:
        self.console, self.timezone, self.enabled = console, timezone, enabled
        self._live = Live(console=console, auto_refresh=False, transient=False) if enabled and console.is_terminal else None
        self._last_line = -1e18

    def start(self) -> None:
        if self._live is not None:
            self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()

    def on_snapshot(self, snap: Snapshot) -> None:
        if self._live is not None:
            self._live.update(status_table(snap, self.timezone), refresh=True)
        elif self.enabled and time.monotonic() - self._last_line >= PROGRESS_EVERY_S:
            self._last_line = time.monotonic()
            self.console.print(progress_line(snap, self.timezone), highlight=False, soft_wrap=True)

"""``run --lines``: one process owns some lines of a site (docs/deployment.md).

Every station of a line stays in the process that owns the line, so the order of its samples and
the state of its stations (buffers, counters, gaps) are never split. The process computes only its
lines: the factory model it hands the live twin holds those lines and, when it owns them, the site
meters (``--meters``; by default the process whose lines include the site's first line).

The mapping is narrowed before the sources start, so a process subscribes to what it owns rather
than receiving every message and dropping most: an entry whose signal template starts with a
placeholder that is a whole level of its topic or browse pattern (``factory/{site}/{line}/...``) is
repeated once per owned line (and ``site`` for the meters' owner) with the line written in; an
entry whose signal starts with a line name is kept only by that line's owner. What cannot be
narrowed (Sparkplug metrics, other templates) still arrives, and the router counts it under
``other_process``: used by the process that owns it, never silently dropped.

Client ids of MQTT sessions get the lines appended: two processes under one id would take the
broker session (and its QoS 1 queue) from each other at every reconnect. The dead-letter files and
the default InfluxDB spool get a folder of their own for the same reason.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from factory_models import Factory
from factory_models.signals import SITE, known_signals


@dataclass(frozen=True)
class Partition:
    """The lines a process owns (config order) and whether it owns the site meters."""

    lines: tuple[str, ...]
    meters: bool

    def owns(self, signal: str) -> bool:
        head = signal.split("/", 1)[0]
        return head in self.lines or (self.meters and head == SITE)

    def heads(self) -> list[str]:
        """The first signal levels this process reads: its lines, and ``site`` with the meters."""
        return [*self.lines, *([SITE] if self.meters else [])]

    def tag(self) -> str:
        """A short stable name of what the process owns: its MQTT session ids, dead-letter folder
        and default InfluxDB spool get it (``l4-l5``; a digest when long), so processes never share them."""
        tail = "-".join(self.heads())
        return tail if len(tail) <= 40 else hashlib.sha1(",".join(self.heads()).encode()).hexdigest()[:10]

    def block(self) -> dict:
        """The ``partition`` block of the run's JSON summary."""
        return {"lines": list(self.lines), "meters": self.meters}


def partition(factory: Factory, lines: str, meters: bool | None = None) -> Partition:
    """``--lines L1,L2`` against the factory: ValueError naming every unknown line (and the known
    ones). ``meters`` None: the process whose lines include the site's first line owns the meters."""
    names = [n.strip() for n in lines.split(",") if n.strip()]
    if not names:
        raise ValueError("--lines: give at least one line name (L1,L2)")
    known = [ln.name for ln in factory.lines]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"--lines: unknown line(s) {', '.join(unknown)}; the factory has {', '.join(known)}")
    owned = tuple(n for n in known if n in names)
    if meters is None:
        meters = known[0] in owned
    return Partition(lines=owned, meters=bool(meters))


def owned_factory(factory: Factory, part: Partition) -> Factory:
    """The factory model of the lines (and meters) this process computes."""
    return factory.model_copy(update={
        "lines": [ln for ln in factory.lines if ln.name in part.lines],
        "meters": list(factory.meters) if part.meters else [],
    })


def notes(factory: Factory, part: Partition) -> list[str]:
    """What a split run's ledger cannot see: without a grid-import meter the ledger stands in the sum
    of the station energy counters (twin/emissions/account.py), here of the owner's lines only."""
    if not part.meters or len(part.lines) == len(factory.lines) or any(m.kind == "grid_import" for m in factory.meters):
        return []
    return [f"no grid-import meter: the emissions ledger's station-energy stand-in covers lines "
            f"{', '.join(part.lines)} only, not the lines of the other processes"]


def elsewhere(factory: Factory, part: Partition) -> frozenset[str]:
    """Signals of the site that another process owns (the router's ``other_process``)."""
    return frozenset(s for s in known_signals(factory) if not part.owns(s))


def _client_id(base: str, part: Partition) -> str:
    return f"{base}-{part.tag()}"


def _narrow(entries, pattern_of, signal_of, part: Partition, rebuild) -> list:
    """Entries feeding only ``part``: expanded over its heads, filtered by a literal head, or kept."""
    out = []
    for e in entries:
        pattern, signal = pattern_of(e), signal_of(e)
        if pattern is None and signal is not None:  # a fixed node: its signal names its line
            if part.owns(signal):
                out.append(e)
            continue
        head = signal.split("/", 1)[0]
        if head.startswith("{") and head.endswith("}") and head in pattern.split("/"):
            levels = pattern.split("/")
            for name in part.heads():
                new_pattern = "/".join(name if lv == head else lv for lv in levels)
                out.append(rebuild(e, new_pattern, signal.replace(head, name)))
        elif "{" in head or part.owns(signal):
            out.append(e)  # cannot be narrowed: the router counts what is not ours
    return out


def narrow_mapping(mapping, part: Partition):
    """A copy of a loaded mapping whose sources subscribe to the owned lines only; sources left
    with nothing to read are dropped (ValueError when none is left)."""
    update = {}
    for key in type(mapping).plugins:
        kept = []
        for src in getattr(mapping, key):
            if key == "mqtt":
                topics = _narrow(src.topics, lambda t: t.pattern, lambda t: t.signal, part,
                                 lambda t, p, s: t.model_copy(update={"pattern": p, "signal": s}))
                if topics:
                    kept.append(src.model_copy(update={"topics": topics,
                                                       "client_id": _client_id(src.session_id, part)}))
            elif key == "opcua":
                nodes = _narrow(src.nodes, lambda n: n.browse, lambda n: n.signal_template, part,
                                lambda n, p, s: n.model_copy(update={"browse": p, "signal": s}))
                if nodes:
                    kept.append(src.model_copy(update={"nodes": nodes}))
            elif hasattr(src, "client_id"):  # Sparkplug and other broker clients: their own session
                kept.append(src.model_copy(update={"client_id": _client_id(src.client_id or f"factory-twin-{src.name}", part)}))
            else:
                kept.append(src)
        update[key] = kept
    narrowed = mapping.model_copy(update=update)
    if not any(True for _ in narrowed.sources()):
        raise ValueError(f"--lines {','.join(part.lines)}: the mapping has no source for these lines")
    return narrowed

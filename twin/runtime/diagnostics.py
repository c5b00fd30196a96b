"""Per-source diagnostics of a live run: the ``sources`` block of ``run --json`` and ``/health``.

For each source: whether it is connected, how often it reconnected, its last error, what its
samples came to (``sent`` onto the twin's queue, ``used`` by the twin, ``rejected`` with the
reasons of both the source, e.g. ``wrong_type``, and the twin, e.g. ``too_old``), and the signals
it names that never delivered a sample (a wrong node id, a meter that never spoke; for an MQTT
source also the topic patterns no message matched).

The twin's router counts per signal, and a source's samples are the signals it delivered: a signal
two sources both deliver is counted under each of them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

#: never-received signals listed per source at most (the count is always exact)
LIST_AT_MOST = 50


def delivered_of(src) -> set[str] | None:
    """The signals ``src`` put at least one sample on the queue for; None when it does not say."""
    fn = getattr(src, "delivered_signals", None)
    return set(fn()) if callable(fn) else None


def source_block(src, router, connections: dict[str, str] | None = None) -> dict[str, Any]:
    """One source's diagnostics (see the module doc). ``connections`` (the twin's in-band
    ``connection/<source>`` states) gives ``connected`` after the sources have stopped, as a run's
    summary is written; without it the source's own flag says (``/health``, while it runs)."""
    st = src.stats()
    delivered = delivered_of(src)
    by_reason: Counter[str] = Counter(st.get("rejected_by_reason") or {})
    used = None
    if delivered is not None:
        used = 0
        for sig in delivered:
            used += router.used_by_signal.get(sig, 0)
            by_reason.update(router.rejected_by_signal.get(sig) or {})
    block: dict[str, Any] = {
        "connected": bool(st.get("connected")) if connections is None else connections.get(src.name) == "up",
        "reconnects": st.get("reconnects", 0),
        "last_error": st.get("last_error"),
        "connect_failures": st.get("connect_failures", 0),
        "samples": {
            "received": st.get("received", 0),
            "sent": st.get("samples", 0),
            "used": used,
            "rejected": sum(by_reason.values()),
            "rejected_by_reason": dict(sorted(by_reason.items())),
        },
    }
    silent = getattr(src, "patterns_never_matched", None)
    if callable(silent):  # a template names no signal until it matches: say which never matched
        block["patterns_never_matched"] = silent()
    if delivered is not None:
        never = sorted(set(src.signals()) - delivered)
        block["never_received"] = never[:LIST_AT_MOST]
        block["never_received_count"] = len(never)
    return block


def sources_block(sources, router, connections: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """``{source name: source_block}`` in the mapping's order."""
    return {src.name: source_block(src, router, connections) for src in sources}


def never_connected(sources, connected: set[str]) -> list[str]:
    """One ``name (where): why`` per source that never connected, for the exit-3 message."""
    out = []
    for src in sources:
        if src.name in connected:
            continue
        cfg = getattr(src, "config", None)
        where = str(getattr(cfg, "endpoint", None) or getattr(cfg, "url", None) or "")
        why = src.stats().get("last_error") or "no answer yet"
        out.append(f"{src.name} ({where}): {why}" if where else f"{src.name}: {why}")
    return out


def source_lines(block: dict[str, dict[str, Any]]) -> list[str]:
    """The text summary's lines of the ``sources`` block, one per source and one per problem."""
    lines = []
    for name, b in block.items():
        s = b["samples"]
        used = "-" if s["used"] is None else s["used"]
        state = "connected" if b["connected"] else "NOT connected"
        line = (f"source {name}: {state}, {b['reconnects']} reconnect(s); samples {s['sent']} sent, {used} used, "
                f"{s['rejected']} rejected")
        if s["rejected_by_reason"]:
            line += " (" + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s["rejected_by_reason"].items()) + ")"
        lines.append(line)
        if b.get("last_error"):
            lines.append(f"  last error: {b['last_error']}")
        if b.get("patterns_never_matched"):
            lines.append(f"  topic patterns never matched: {', '.join(b['patterns_never_matched'])}")
        if b.get("never_received_count"):
            shown = ", ".join(b["never_received"])
            more = b["never_received_count"] - len(b["never_received"])
            lines.append(f"  never received ({b['never_received_count']}): {shown}" + (f" and {more} more" if more else ""))
    return lines

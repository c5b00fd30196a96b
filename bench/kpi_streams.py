"""The KPI benchmark's synthetic streams: 64 stations, one day, one-minute windows.

Each stream has the requested number of rows spread evenly over the units (or unit-channel keys),
times jittered on a grid so they are sorted within a key, as ``EventLog.freeze`` leaves them.
"""

from __future__ import annotations

import numpy as np

from factory_models.states import N_STATES, State
from twin.kpi.eventlog import CONTINUOUS, N_CHANNELS, Channel, csr_offsets

T0 = 1_772_409_600.0  # 2026-03-02T00:00:00Z
SPAN_S = 86_400.0
N_UNITS = 64
N_PRODUCTS = 4
WINDOW_S = 60.0
MODULUS = 65_536.0
UNKNOWN, DOWN, PRODUCING = int(State.UNKNOWN), int(State.DOWN), int(State.PRODUCING)
MICRO_STOP_S = 120.0


# --- synthetic streams --------------------------------------------------------------------------


def _keyed_times(n: int, n_keys: int, rng: np.random.Generator, keys: np.ndarray | None = None):
    """(t, key, offsets): n rows over the given keys, sorted by (key, t), jittered on an even grid."""
    keys = np.arange(n_keys) if keys is None else keys
    per = max(n // len(keys), 1)
    key = np.repeat(keys, per).astype(np.int64)
    grid = (np.tile(np.arange(per, dtype=np.float64), len(keys)) + rng.random(key.size)) * (SPAN_S / per)
    return T0 - 60.0 + grid * (SPAN_S + 120.0) / SPAN_S, key, csr_offsets(key, n_keys)


def make_stream(name: str, n: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    if name == "state_durations":
        t, key, off = _keyed_times(n, N_UNITS, rng)
        return {"t": t, "key": key, "offsets": off, "value": rng.integers(0, N_STATES - 1, t.size).astype(np.int8)}
    if name == "counter_deltas":
        t, key, off = _keyed_times(n, N_UNITS * N_CHANNELS, rng)
        steps = rng.integers(0, 3, t.size).astype(np.float64)
        value = np.empty_like(steps)
        for k in range(N_UNITS * N_CHANNELS):  # cumulative per key, wrapping like a 16-bit PLC counter
            s = slice(off[k], off[k + 1])
            value[s] = np.cumsum(steps[s]) % MODULUS
        return {"t": t, "key": key, "offsets": off, "value": value}
    if name == "trapezoid_energy":
        t, key, off = _keyed_times(n, N_UNITS, rng)
        return {"t": t, "key": key, "offsets": off, "value": rng.random(t.size) * 20.0}
    if name == "ideal_time":
        produced_keys = np.arange(N_UNITS) * N_CHANNELS + int(Channel.PRODUCED)
        t, key, off = _keyed_times(n, N_UNITS * N_CHANNELS, rng, keys=produced_keys)
        value = np.empty(t.size)
        steps = rng.integers(0, 3, t.size).astype(np.float64)
        for u in range(N_UNITS):
            s = slice(off[produced_keys[u]], off[produced_keys[u] + 1])
            value[s] = np.cumsum(steps[s]) % MODULUS
        pt, pkey, poff = _keyed_times(N_UNITS * 200, N_UNITS, rng)
        return {"t": t, "key": key, "offsets": off, "value": value, "p_t": pt, "p_key": pkey, "p_offsets": poff,
                "p_code": rng.integers(-1, N_PRODUCTS, pt.size).astype(np.int32),
                "default": np.zeros(N_UNITS, dtype=np.int64),
                "ideal_cycle_s": rng.uniform(5.0, 60.0, (N_UNITS, N_PRODUCTS))}
    if name == "failure_spells":  # DOWN often, broken by planned stops, shift ends and gaps
        t, key, off = _keyed_times(n, N_UNITS, rng)
        codes = np.array([DOWN, DOWN, int(State.PRODUCING), int(State.PLANNED_STOP), int(State.NO_SHIFT), UNKNOWN,
                          int(State.STARVED)], dtype=np.int8)
        return {"t": t, "key": key, "offsets": off, "value": codes[rng.integers(0, codes.size, t.size)]}
    if name == "gap_parts":  # the ideal_time streams plus states with UNKNOWN spells
        d = make_stream("ideal_time", n, seed)
        st, skey, soff = _keyed_times(max(n // 4, N_UNITS), N_UNITS, rng)
        codes = np.array([int(State.PRODUCING)] * 6 + [UNKNOWN, DOWN], dtype=np.int8)
        return {**d, "s_t": st, "s_key": skey, "s_offsets": soff, "s_code": codes[rng.integers(0, codes.size, st.size)]}
    raise ValueError(name)


#: The arrays each kernel reads (each once, front to back), for the bytes-read figure: only what the
#: kernel touches, never the key column (the kernels walk the CSR offsets instead).
READS = {"state_durations": ("t", "value", "offsets"), "counter_deltas": ("t", "value", "offsets"),
         "trapezoid_energy": ("t", "value", "offsets"),
         "ideal_time": ("t", "value", "offsets", "p_t", "p_code", "p_offsets"),
         "failure_spells": ("t", "value", "offsets"),
         "gap_parts": ("t", "value", "offsets", "s_t", "s_code", "s_offsets", "p_t", "p_code", "p_offsets")}


def bytes_read(name: str, d: dict) -> int:
    """Bytes of the input arrays the kernel reads (every row of the bench's streams is read)."""
    return sum(d[a].nbytes for a in READS[name]) + EDGES.nbytes
EDGES = T0 + np.arange(int(SPAN_S / WINDOW_S) + 1) * WINDOW_S
T_END = T0 + SPAN_S - 30.0
MOD = np.where(CONTINUOUS, 0.0, MODULUS)

"""Helpers for the OPC UA tests: a small factory, a simulated PLC on a free loopback port, a mapping.

The tests run real asyncua servers in the test's own event loop, bound to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import yaml

from connectors.mapping import Mapping, load_mapping
from connectors.opcua.plc import NAMESPACE_URI
from factory_models import Factory, Sample

POWER = {"producing": 10, "setup": 3, "down": 1, "idle": 2, "planned_stop": 0.5, "no_shift": 0.1}

FACTORY = Factory.model_validate(
    {
        "site": {"name": "suzhou-smt"},
        "products": [{"name": "board-a"}],
        "lines": [
            {
                "name": "line1",
                "stations": [
                    {"name": "printer", "cycle_time_s": {"board-a": 20}, "power_kw": POWER},
                    {"name": "cnc", "machines": 2, "cycle_time_s": {"board-a": 40}, "power_kw": POWER},
                ],
            }
        ],
    }
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_mapping(tmp_path: Path, source: dict, site: str = "suzhou-smt") -> Mapping:
    """Write one opcua source to a mapping file and load it as the runtime would."""
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump({"site": site, "opcua": [source]}, sort_keys=False))
    return load_mapping(path, FACTORY)


def node(signal: str, **extra) -> dict:
    """A mapping entry for one variable of the simulated PLC; its state is read as PackML codes."""
    values = {"values": "packml"} if signal.endswith("/state") else {}
    return {"node": f"nsu={NAMESPACE_URI};s={signal}", "signal": signal, **values, **extra}


FAST = {"publishing_interval_ms": 50, "sampling_interval_ms": 0, "queue_size": 100, "batch_size": 100}


async def collect(queue: asyncio.Queue, until, timeout_s: float = 15.0) -> list[Sample]:
    """Samples from ``queue`` until ``until(samples)`` is true; TimeoutError (with what came) otherwise."""
    got: list[Sample] = []
    deadline = time.monotonic() + timeout_s
    while not until(got):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"condition not met after {timeout_s} s; received {got}")
        try:
            got.append(await asyncio.wait_for(queue.get(), left))
        except asyncio.TimeoutError:
            continue
    return got


def latest(samples: list[Sample], signal: str) -> Sample | None:
    match = [s for s in samples if s.signal == signal]
    return match[-1] if match else None

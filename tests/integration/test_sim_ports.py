"""The demo's simulators on fixed ports: a taken port is one clear line and exit 2 (no traceback),
and the endpoints are printed at start. Tests take ports from the OS (0), never 4840 or 1883."""

from __future__ import annotations

import asyncio
import json
import socket
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.mqtt.broker import EmbeddedBroker
from connectors.opcua.plc import SimulatedPlc
from connectors.ports import PortInUse
from support.opcua_server import FACTORY
from twin.cli import app

pytestmark = pytest.mark.integration

SMT = Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml"


@contextmanager
def taken_port():
    """A loopback port another server listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_a_taken_port_is_one_line_naming_the_simulator_and_the_option():
    async def main(port: int):
        with pytest.raises(PortInUse) as plc_err:
            await SimulatedPlc(FACTORY, port=port).start()
        with pytest.raises(PortInUse) as broker_err:
            await EmbeddedBroker(port=port).start()
        return str(plc_err.value), str(broker_err.value)

    with taken_port() as port:
        plc, broker = asyncio.run(main(port))
    assert plc.startswith(f"simulated PLC: cannot listen on 127.0.0.1:{port}: ") and "--plc-port" in plc
    assert broker.startswith(f"embedded MQTT broker: cannot listen on 127.0.0.1:{port}: ") and "--broker-port" in broker
    assert "\n" not in plc + broker


@pytest.mark.parametrize("option", ["--plc-port", "--broker-port"])
def test_demo_exits_2_with_one_line_when_its_port_is_taken(option):
    other = "--broker-port" if option == "--plc-port" else "--plc-port"
    with taken_port() as port:
        result = CliRunner().invoke(app, ["demo", "--config", str(SMT), option, str(port), other, "0",
                                          "--no-store", "--no-dashboard", "-d", "5"])
    assert result.exit_code == 2, (result.output, result.exception)
    err = result.stderr.strip()
    assert "Traceback" not in result.output
    assert len(err.splitlines()) == 1, err
    assert err.startswith("factory-twin: demo: ") and f"127.0.0.1:{port}" in err and option in err, err


def test_demo_prints_its_endpoints_at_start():
    result = CliRunner().invoke(app, ["demo", "--config", str(SMT), "--plc-port", "0", "--broker-port", "0",
                                      "--duration", "2", "--speed", "60", "--no-store", "--no-dashboard", "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    doc = json.loads(result.stdout)
    lines = result.stderr.splitlines()
    plc = [ln for ln in lines if ln.startswith("simulated PLC: ")]
    broker = [ln for ln in lines if ln.startswith("MQTT broker (embedded): ")]
    assert len(plc) == 1 and len(broker) == 1, result.stderr
    assert plc[0].startswith(f"simulated PLC: {doc['demo']['opcua']} (namespace urn:factory-twin:simulated-plc")
    assert broker[0].startswith(f"MQTT broker (embedded): {doc['demo']['mqtt']} ")

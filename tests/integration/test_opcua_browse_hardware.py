"""``browse`` and browse patterns against servers as plants have them (issue 12, item 5): a vendor's
server with AnalogItemType variables and names that are not the twin's, and a secured server with a
user and password.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import yaml
from support.opcua_server import FACTORY, FAST, collect, free_port, write_mapping
from support.vendor_opcua import VendorPlc
from typer.testing import CliRunner

from connectors.opcua.browse import browse_to_mapping_async
from connectors.opcua.client import OpcUaClient
from connectors.opcua.plc import PlcSecurity, SimulatedPlc
from factory_models.signals import known_signals
from twin.cli import app

pytestmark = pytest.mark.integration

USERS = {"operator": "correct horse battery staple"}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_browse_writes_units_ranges_and_types_of_a_vendor_server():
    async def main():
        plc = VendorPlc(free_port())
        await plc.start()
        try:
            return await browse_to_mapping_async(plc.endpoint, source_name="press")
        finally:
            await plc.stop()

    text = run(main())
    nodes = {n["node"].rsplit("DB10.", 1)[1]: n for n in yaml.safe_load(text)["opcua"][0]["nodes"]}
    # EngineeringUnits W (UNECE WTT, unitId 0x575454) becomes unit: W, converted to the signal's kW
    assert nodes["Press.Power"]["unit"] == "W" and nodes["Press.Power"]["eu_range"] == [0.0, 20000.0]
    assert "unit" not in nodes["Press.State"] and "eu_range" not in nodes["Press.State"]
    assert "# Objects/PLC/Press/Power: Double; AnalogItemType; EngineeringUnits W (UNECE WTT)" in text
    assert "# Objects/PLC/Press/State: String; BaseDataVariableType" in text
    assert "# Objects/PLC/Press/Good: UInt16; BaseDataVariableType" in text
    assert 'unit: "W"  # x 0.001 to the signal\'s unit' in text


def test_rename_and_case_lower_map_vendor_names_onto_the_twins(tmp_path):
    """``Objects/PLC/{station}/{signal}`` on the vendor's ``PLC/Press/{State,Power,Good}``: the
    station by the rename table (Press -> printer), the leaves by it or by case folding."""

    async def main():
        plc = VendorPlc(free_port())
        await plc.start()
        mapping = write_mapping(tmp_path, {
            "name": "press", "endpoint": plc.endpoint, "subscription": FAST,
            "nodes": [{"browse": "Objects/plc/{station}/{signal}", "signal": "line1/{station}/{signal}",
                       "rename": {"Press": "printer", "Power": "power_kw"}, "case": "lower"}],
        })
        src = OpcUaClient(mapping.opcua[0], mapping.site, known_signals(FACTORY))
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(src.run(queue))
        try:
            got = await collect(queue, lambda got: len({s.signal for s in got}) >= 4)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await plc.stop()
        return got, src

    got, src = run(main())
    values = {s.signal: s.value for s in got if not s.signal.startswith("connection/")}
    # 'PLC' matched the text level 'plc' by case; Press, Power by the table; State, Good by case
    assert values == {"line1/printer/state": "PRODUCING", "line1/printer/power_kw": 2500.0,
                      "line1/printer/good": 10.0}
    assert src.stats()["rejected"] == 0


def test_rename_is_for_browse_patterns_only(tmp_path):
    from factory_models import ConfigError

    with pytest.raises(ConfigError, match="rename and case apply to browse patterns"):
        write_mapping(tmp_path, {"name": "p", "endpoint": "opc.tcp://127.0.0.1:4840",
                                 "nodes": [{"node": "nsu=urn:x;s=a", "signal": "line1/printer/state", "case": "lower"}]})


def test_browse_cli_connects_with_security_and_credentials_and_writes_them(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_OPCUA_USER", "operator")
    (tmp_path / "password").write_text(USERS["operator"] + "\n")
    (tmp_path / "wrong").write_text("guess\n")
    ready, done = threading.Event(), threading.Event()
    box: dict = {}

    def serve():
        async def main():
            security = PlcSecurity(cert=tmp_path / "server" / "cert.der", key=tmp_path / "server" / "key.pem",
                                   users=USERS)
            async with SimulatedPlc(FACTORY, port=0, security=security) as plc:
                box["endpoint"] = plc.endpoint
                ready.set()
                await asyncio.to_thread(done.wait, 60)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    pki = tmp_path / "pki"
    common = ["--security-policy", "Basic256Sha256", "--security-mode", "SignAndEncrypt",
              "--client-cert", str(pki / "client.der"), "--client-key", str(pki / "client.pem"),
              "--username-env", "FT_OPCUA_USER"]
    try:
        assert ready.wait(30)
        out = tmp_path / "draft.yaml"
        ok = CliRunner().invoke(app, ["browse", box["endpoint"], "--out", str(out), "--name", "plc1", *common,
                                      "--password-file", str(tmp_path / "password")])
        refused = CliRunner().invoke(app, ["browse", box["endpoint"], *common,
                                           "--password-file", str(tmp_path / "wrong")])
        # a certificate made once and the server's pinned on first use, as a mapping source does
        pinned = (pki / "plc1-server.der").exists()
    finally:
        done.set()
        thread.join(30)
    assert ok.exit_code == 0, ok.output
    source = yaml.safe_load(out.read_text())["opcua"][0]
    assert source["security"] == {"policy": "Basic256Sha256", "mode": "SignAndEncrypt",
                                  "client_cert": str(pki / "client.der"), "client_key": str(pki / "client.pem")}
    assert source["username_env"] == "FT_OPCUA_USER" and source["password_file"] == str(tmp_path / "password")
    assert len(source["nodes"]) == 24 and pinned
    # load_mapping takes the draft as it is
    mapping = write_mapping(tmp_path, source)
    assert mapping.opcua[0].security.policy == "Basic256Sha256"
    assert refused.exit_code == 2, refused.output
    assert "refused" in refused.stderr and "Traceback" not in refused.output


def test_browse_cli_refuses_options_that_do_not_go_together(tmp_path):
    result = CliRunner().invoke(app, ["browse", "opc.tcp://127.0.0.1:1", "--security-policy", "Basic256Sha256"])
    assert result.exit_code == 2
    assert "policy Basic256Sha256 needs mode" in result.stderr and "Traceback" not in result.output

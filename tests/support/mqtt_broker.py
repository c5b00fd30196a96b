"""A real mosquitto for integration tests: a free loopback port, a temp config, persistence on disk.

``Mosquitto.restart()`` stops the broker with SIGTERM (mosquitto then writes its persistence file:
sessions, subscriptions and queued QoS 1 messages) and starts it again on the same port. The
queue per client is what connectors/mqtt/README.md asks of a plant's broker (``max_queued_messages``
large, ``max_queued_bytes`` 0); ``max_queued_messages=1000`` gives mosquitto's default, which
drops what a persistent subscriber misses beyond it.

With ``cafile``, ``certfile`` and ``keyfile`` the listener speaks TLS only (``url`` is then
``mqtts://``); ``require_certificate=True`` makes it demand a client certificate signed by ``cafile``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        users: dict[str, str] | None = None,
        *,
        cafile: Path | None = None,
        certfile: Path | None = None,
        keyfile: Path | None = None,
        require_certificate: bool = False,
        max_queued_messages: int = 1_000_000,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.proc: subprocess.Popen | None = None
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.tls = certfile is not None
        if self.tls and not (cafile and keyfile):
            raise ValueError("a TLS listener needs cafile, certfile and keyfile")
        if require_certificate and not self.tls:
            raise ValueError("require_certificate needs a TLS listener")
        lines = [
            f"listener {self.port} 127.0.0.1",
            "user root",  # stay the test's user: dropping to 'mosquitto' could not write the temp dir
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 0",  # written at shutdown (SIGTERM) only: the tests never kill -9 it
            # a persistent subscriber that is away must not lose queued QoS 1 messages to the default cap of 1000
            f"max_queued_messages {max_queued_messages}",
            "max_queued_bytes 0",
            "persistent_client_expiration 1d",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if self.tls:  # these belong to the listener above
            lines += [f"cafile {cafile}", f"certfile {certfile}", f"keyfile {keyfile}"]
            if require_certificate:
                lines.append("require_certificate true")
        if users:
            pw = self.workdir / "passwd"
            pw.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
            subprocess.run([MOSQUITTO_PASSWD, "-U", str(pw)], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()} {self.log_text()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout_s} s: {self.log_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def meters_source(url: str, name: str = "meters", **fields):
    """An MqttSource on the default topic convention, with test-specific fields."""
    from connectors.mapping import MqttSource

    data = {"name": name, "url": url, "topics": [{"pattern": "factory/{site}/{line}/{station}/{signal}"}]}
    data.update(fields)
    return MqttSource.model_validate(data)


async def next_sample(queue, timeout_s: float = 15.0):
    """The next Sample, or a failure that says the source went quiet (a guard, not a speed check)."""
    import asyncio

    try:
        return await asyncio.wait_for(queue.get(), timeout_s)
    except asyncio.TimeoutError:
        raise AssertionError(f"no sample within {timeout_s} s") from None

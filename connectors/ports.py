"""The fixed ports of the simulators (the demo's PLC and broker): taken is one clear line.

asyncua and amqtt each log a traceback when their bind fails, so the port is tried first with a
plain socket (SO_REUSEADDR, as asyncio's servers set it: a port left in TIME_WAIT by a restart is
free, one with a listener is not), and ``PortInUse`` says which simulator, which address and
which option picks another port.
"""

from __future__ import annotations

import socket


class PortInUse(OSError):
    """A simulator's fixed port is taken (another server, or another demo still running)."""


def check_port(host: str, port: int, what: str, option: str) -> None:
    """PortInUse naming ``what``, ``host:port`` and ``option`` when nothing can listen there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise port_in_use(what, host, port, option, exc) from None


def port_in_use(what: str, host: str, port: int, option: str, exc: OSError) -> PortInUse:
    err = PortInUse(f"{what}: cannot listen on {host}:{port}: {exc.strerror or exc} "
                    f"(another server on it? pick another with {option}, 0 for a free one)")
    err.errno = exc.errno  # kept for callers; the message stays one plain line (no "[Errno 98]")
    return err


def free_port(host: str) -> int:
    """A port nothing listens on now (for port 0: the simulators report the port they took)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]

"""An MQTT broker for the demo and the tests, started from the project's Mosquitto configuration.

``Mosquitto`` runs the system's ``mosquitto`` binary (a real MQTT 5 broker) on a free loopback port
with ``deploy/mosquitto/mosquitto.conf``. When no binary is installed, the demo falls back to
``amqtt`` (pure Python, MQTT 3.1.1 only, no shared subscriptions) — see ``embedded_broker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

PROJECT_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"


class BrokerError(Exception):
    """The embedded broker could not be started."""


@dataclass(frozen=True, slots=True)
class BrokerEndpoint:
    host: str
    port: int
    protocol: Literal["5", "3.1.1"] = "5"
    #: False for brokers without MQTT 5 shared subscriptions.
    shared_subscriptions: bool = True

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


class Mosquitto:
    """A private Mosquitto process: ``start()``, ``stop()``, ``kill()``; restartable on the same
    port and data directory (tests that need a broker outage use that)."""

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: Path | None = None,
        config: Path = PROJECT_CONFIG,
        binary: str | None = None,
        extra_config: str = "",
        allow_anonymous: bool = True,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="homewatch-mosquitto-"))
        self.config = config
        #: Lines appended to the configuration (e.g. an acl_file, or a TLS listener, for a test).
        self.extra_config = extra_config
        #: False for a broker that authenticates (password_file, client certificates).
        self.allow_anonymous = allow_anonymous
        self.binary = binary or shutil.which("mosquitto") or _debian_binary()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> BrokerEndpoint:
        return BrokerEndpoint(self.host, self.port)

    @property
    def log_file(self) -> Path:
        return self.data_dir / "mosquitto.log"

    def _write_config(self) -> Path:
        run_config = self.data_dir / "mosquitto.conf"
        run_config.write_text(
            self.config.read_text()
            + "\n# --- added for this private instance ---\n"
            + f"listener {self.port} {self.host}\n"
            + f"allow_anonymous {'true' if self.allow_anonymous else 'false'}\n"
            + f"persistence_location {self.data_dir}/\n"
            # Stay the current user: as root, mosquitto would otherwise switch to 'mosquitto',
            # which cannot write our data directory.
            + f"user {getpass.getuser()}\n"
            + self.extra_config
        )
        return run_config

    def start(self, timeout: float = 10.0) -> BrokerEndpoint:
        if self.binary is None:
            raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        if self._proc and self._proc.poll() is None:
            return self.endpoint
        config = self._write_config()
        with self.log_file.open("ab") as log_out:
            self._proc = subprocess.Popen(
                [self.binary, "-c", str(config)], stdout=log_out, stderr=subprocess.STDOUT
            )
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise BrokerError(
                f"mosquitto did not listen on {self.host}:{self.port} within {timeout}s; "
                f"its log: {self.log_file}\n{self._log_tail()}"
            )
        log.info("mosquitto %s listening on %s", self._proc.pid, self.endpoint.url)
        return self.endpoint

    def stop(self, timeout: float = 10.0) -> None:
        """Clean shutdown: Mosquitto saves its persistent store on SIGTERM."""
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """Crash: SIGKILL, nothing saved since the last autosave."""
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _debian_binary() -> str | None:
    # /usr/sbin is not on every user's PATH.
    path = "/usr/sbin/mosquitto"
    return path if os.access(path, os.X_OK) else None


@contextlib.asynccontextmanager
async def running_mosquitto(**kwargs: object) -> AsyncIterator[Mosquitto]:
    broker = Mosquitto(**kwargs)  # type: ignore[arg-type]
    try:
        await asyncio.to_thread(broker.start)
        yield broker
    finally:
        await asyncio.to_thread(broker.close)


@contextlib.asynccontextmanager
async def running_amqtt(port: int | None = None) -> AsyncIterator[BrokerEndpoint]:
    """The pure-Python fallback broker, in this process (it must be built inside the loop)."""
    try:
        from amqtt.broker import Broker
    except ImportError as exc:
        raise BrokerError(
            "no mosquitto binary and amqtt is not installed: install mosquitto, or "
            "pip install 'homewatch[embedded]', or pass --mqtt-url"
        ) from exc
    port = port or free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "sys_interval": 0,
            "auth": {"allow-anonymous": True, "plugins": ["auth_anonymous"]},
            "topic-check": {"enabled": False},
        }
    )
    await broker.start()
    try:
        yield BrokerEndpoint("127.0.0.1", port, protocol="3.1.1", shared_subscriptions=False)
    finally:
        await broker.shutdown()


EmbeddedBrokerKind = Literal["auto", "mosquitto", "amqtt"]


@contextlib.asynccontextmanager
async def embedded_broker(kind: EmbeddedBrokerKind = "auto") -> AsyncIterator[BrokerEndpoint]:
    """Mosquitto when installed (MQTT 5, the project's config), otherwise amqtt."""
    use_mosquitto = kind == "mosquitto" or (
        kind == "auto" and (shutil.which("mosquitto") or _debian_binary())
    )
    if use_mosquitto:
        async with running_mosquitto() as broker:
            yield broker.endpoint
    else:
        if kind == "auto":
            log.warning("no mosquitto binary found: falling back to amqtt (MQTT 3.1.1, slower)")
        async with running_amqtt() as endpoint:
            yield endpoint

"""A real Mosquitto on loopback for the tests: TLS, a certificate per client, ACLs, persistence.

Certificates are made with the openssl command line, as firmware/provision.sh makes them on a
site: one CA, the broker's certificate for 127.0.0.1, and one client certificate per node and
for the core, each named by its common name (the broker takes it as the user name). A second,
unrelated CA signs a "rogue" certificate that the broker must refuse.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho

from scanner.mqtt.link import BrokerSettings, open_client

# The site and gate every MQTT test uses.
SITE, GATE = "hq", "north"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, crt = directory / f"{name}.key", directory / f"{name}.crt"
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key), cwd=directory)
    _openssl(
        "req",
        "-x509",
        "-new",
        "-key",
        str(key),
        "-sha256",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-out",
        str(crt),
        cwd=directory,
    )
    return crt, key


def make_cert(
    directory: Path, ca: tuple[Path, Path], cn: str, server: bool = False
) -> tuple[Path, Path]:
    key, csr, crt = directory / f"{cn}.key", directory / f"{cn}.csr", directory / f"{cn}.crt"
    ext = directory / f"{cn}.ext"
    if server:
        ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    else:
        ext.write_text("extendedKeyUsage=clientAuth\n")
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key), cwd=directory)
    _openssl("req", "-new", "-key", str(key), "-subj", f"/CN={cn}", "-out", str(csr), cwd=directory)
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca[0]),
        "-CAkey",
        str(ca[1]),
        "-CAcreateserial",
        "-days",
        "2",
        "-sha256",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
        cwd=directory,
    )
    return crt, key


@dataclass
class Broker:
    """One Mosquitto process and the files it runs from."""

    directory: Path
    port: int
    ca: Path
    certs: dict[str, tuple[Path, Path]]
    process: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.directory / "mosquitto.conf"

    def start(self) -> None:
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port}: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def log(self) -> str:
        path = self.directory / "mosquitto.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def write_conf(directory: Path, port: int, ca: Path, server: tuple[Path, Path], acl: Path) -> None:
    (directory / "data").mkdir(exist_ok=True)
    # Mosquitto started as root drops to the user named here; the test's own user keeps the
    # temporary files (mode 0700) readable to it.
    user = pwd.getpwuid(os.getuid()).pw_name
    (directory / "mosquitto.conf").write_text(
        f"""per_listener_settings false
user {user}
persistence true
persistence_location {directory / "data"}/
autosave_interval 1
max_queued_messages 0
max_inflight_messages 20
allow_anonymous false
acl_file {acl}
log_dest stderr
log_type error
log_type warning
log_type notice
listener {port} 127.0.0.1
cafile {ca}
certfile {server[0]}
keyfile {server[1]}
require_certificate true
use_identity_as_username true
tls_version tlsv1.2
"""
    )


def write_acl(path: Path, site: str, gate: str, nodes: list[str], core: str) -> None:
    base = f"checkpoint/{site}/{gate}"
    lines = []
    for node in nodes:
        lines += [f"user {node}", f"topic write {base}/sensor/{node}/#", ""]
    lines += [f"user {core}", f"topic read {base}/sensor/#", f"topic readwrite {base}/core/#", ""]
    path.write_text("\n".join(lines))


def make_broker(
    directory: Path, site: str, gate: str, nodes: list[str], core: str = "core"
) -> Broker:
    directory.mkdir(parents=True, exist_ok=True)
    pki = directory / "pki"
    pki.mkdir(exist_ok=True)
    ca = make_ca(pki, "ca")
    server = make_cert(pki, ca, "broker", server=True)
    certs = {name: make_cert(pki, ca, name) for name in [*nodes, core]}
    rogue = pki / "rogue"
    rogue.mkdir(exist_ok=True)
    rogue_ca = make_ca(rogue, "rogue-ca")
    # A certificate with a node's own name, signed by a CA the broker does not trust.
    certs["rogue"] = make_cert(rogue, rogue_ca, nodes[0] if nodes else "rogue")
    acl = directory / "acl"
    write_acl(acl, site, gate, nodes, core)
    port = free_port()
    write_conf(directory, port, ca[0], server, acl)
    return Broker(directory, port, ca[0], certs)


class Proxy:
    """A TCP forwarder between one client and the broker that the test can cut and restore:
    the network between a sensor node and the broker, going down and coming back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(8)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the thread blocked in accept(); close alone would leave it listening.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)


def connected_client(settings: BrokerSettings, client_id: str) -> paho.Client:
    """A plain paho client of the given identity, connected (CONNACK received) and looping."""
    client = open_client(settings, client_id=client_id)
    client.connect(settings.host, settings.port, settings.keepalive_s)
    client.loop_start()
    deadline = time.monotonic() + 10
    while not client.is_connected():
        if time.monotonic() > deadline:
            client.loop_stop()
            raise RuntimeError(f"{client_id} was not connected within 10 s")
        time.sleep(0.02)
    return client

"""Test certificates (a CA of our own and a server certificate naming only ``redis.test``) and
a TLS front: TLS on a local port, plain TCP to a server that has no TLS listener (RabbitMQ)."""

from __future__ import annotations

import select
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

from services import apt_install

NAME = "redis.test"  # the one name the server certificate gives


def make_certs(d: Path) -> None:
    """ca.pem / ca.key, and server.pem / server.key for NAME, in ``d``."""
    if shutil.which("openssl") is None:
        apt_install("openssl")
    d.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=celerytool test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", f"/CN={NAME}")
    (d / "ext").write_text(f"subjectAltName=DNS:{NAME}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "ext")


class TLSFront:
    """Accepts TLS on 127.0.0.1:``port`` with the server certificate of ``certs``, and relays
    each connection's bytes to ``target`` in plain TCP (one thread per connection)."""

    def __init__(self, certs: Path, target: tuple[str, int]) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certs / "server.pem", certs / "server.key")
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(raw,), daemon=True).start()

    def _relay(self, raw: socket.socket) -> None:
        try:
            front = self.context.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):  # the client refused our certificate: its side of the test
            raw.close()
            return
        back = socket.create_connection(self.target)
        try:
            while True:
                ready = [front] if front.pending() else select.select([front, back], [], [], 1.0)[0]
                for sock, other in ((front, back), (back, front)):
                    if sock in ready:
                        data = sock.recv(65536)
                        if not data:
                            return
                        other.sendall(data)
        except (OSError, ssl.SSLError):
            return
        finally:
            front.close()
            back.close()

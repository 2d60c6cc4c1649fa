"""A TCP front for the embedded Redis (a unix socket), for tests of the network between the
server and Redis: TLS with a private CA (Memorystore's in-transit encryption), and connections
that go silent without closing (a failover or a path reset that sends no FIN/RST)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import select
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class _Link:
    client: socket.socket
    upstream: socket.socket
    subscriber: bool = False  # sent SUBSCRIBE: a Socket.IO listener's pub/sub connection
    silent: threading.Event = field(default_factory=threading.Event)


class RedisProxy:
    def __init__(self, unix_path: str, *, tls: ssl.SSLContext | None = None) -> None:
        self.unix_path = unix_path.removeprefix("unix://")
        self.tls = tls
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.links: list[_Link] = []
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, scheme: str = "redis") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def silence_subscribers(self) -> int:
        """From now on, forward nothing either way on the pub/sub connections opened so far, and
        keep them open: the peer looks alive to the kernel but never answers. New connections
        work normally. Returns how many connections went silent."""
        with self._lock:
            subs = [link for link in self.links if link.subscriber]
        for link in subs:
            link.silent.set()
        return len(subs)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            links = list(self.links)
        for link in links:
            for s in (link.client, link.upstream):
                with contextlib.suppress(OSError):
                    s.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._open, args=(client,), daemon=True).start()

    def _open(self, client: socket.socket) -> None:
        if self.tls is not None:
            try:
                client = self.tls.wrap_socket(client, server_side=True)
            except (OSError, ssl.SSLError):  # the client refused our certificate
                client.close()
                return
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.unix_path)
        except OSError:  # Redis is gone (end of a test)
            client.close()
            return
        link = _Link(client, upstream)
        with self._lock:
            self.links.append(link)
        self._pump(link)

    def _pump(self, link: _Link) -> None:
        # One thread per link, reading and writing in turn: an SSL socket must not be read and
        # written from two threads at once.
        client, upstream = link.client, link.upstream
        try:
            while not self._closed:
                if isinstance(client, ssl.SSLSocket) and client.pending():
                    ready = [client]
                else:
                    ready, _, _ = select.select([client, upstream], [], [], 0.5)
                for src in ready:
                    try:
                        data = src.recv(65536)
                    except ssl.SSLWantReadError:
                        continue
                    if not data:
                        raise ConnectionResetError("closed")
                    if src is client and b"SUBSCRIBE" in data.upper():
                        link.subscriber = True
                    if link.silent.is_set():
                        continue  # swallowed: neither an answer nor an error ever comes back
                    (upstream if src is client else client).sendall(data)
        except OSError:
            pass
        if link.silent.is_set():
            return  # a silent link stays open until close()
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.close()


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # Memorystore: TLS 1.2 or higher
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_private_ca(folder: Path) -> TlsFiles:
    """A per-instance CA and a server certificate for 127.0.0.1 signed by it, like the server CA
    Memorystore generates for an instance with in-transit encryption."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Redis server CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "server-ca.pem", folder / "server.pem", folder / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files

"""TLS for TARS listeners and channels (Python ``ssl``), and who a peer's certificate names.

* A server with ``TlsConfig(cert, key)`` speaks TLS only; with ``ca`` and
  ``client_auth`` it also requires a client certificate signed by that CA (mutual TLS),
  and the certificate's name (its first DNS subject-alternative name, else its common
  name) is the peer's identity: a node authenticates as the node its certificate names.
* A client with ``ca`` verifies the server against it (host name included); with
  ``cert``/``key`` it presents its own certificate.

TLS 1.2 at least; Python's default ciphers. A plain-TCP peer on a TLS port fails the
handshake and is closed (the TARS port never reads its bytes as requests).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class TlsConfig:
    cert: Path | None = None
    key: Path | None = None
    #: CA bundle that signs the peers (clients: the servers; servers: client certificates)
    ca: Path | None = None
    #: a server requires client certificates signed by ``ca`` (mutual TLS)
    client_auth: bool = False

    def server_context(self) -> ssl.SSLContext:
        if self.cert is None or self.key is None:
            raise ValueError("a TLS listener needs a certificate and its key")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert), str(self.key))
        if self.client_auth:
            if self.ca is None:
                raise ValueError("mutual TLS needs the CA that signs client certificates")
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(str(self.ca))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(self.ca) if self.ca else None
        )
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert is not None and self.key is not None:
            ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


def cert_name(peercert: dict[str, Any] | None) -> str | None:
    """The identity a verified peer certificate names: its first DNS SAN, else its CN."""
    if not peercert:
        return None
    for kind, value in peercert.get("subjectAltName", ()):
        if kind == "DNS":
            return str(value)
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None

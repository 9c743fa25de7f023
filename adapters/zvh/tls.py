"""Mutual TLS for the ZVH HTTP intake (issue 21 point 4): the client certificate as a party's
credential, beside the bearer token.

With ``zvh_http_tls_certfile``/``_keyfile`` the intake serves HTTPS; with
``zvh_http_tls_client_ca`` as well it asks every client for a certificate (``CERT_OPTIONAL``: a
client may still come with a token instead) and the handshake refuses one that the CA did not
sign (RFC 8446 §4.4.2.4). A verified certificate names its party by its subject common name or
a DNS subject-alternative name (the party id, as for the Kafka client certificates of
``docs/trust.md``); :class:`~adapters.zvh.auth.IntakeAuth` then checks that party against the
registry exactly as it checks a token's holder.

uvicorn does not put the peer certificate in the ASGI scope, so :class:`PeerNamesProtocol`
reads it from the TLS connection and hands the names to the app as the ASGI TLS extension's
``client_cert_name`` (https://asgi.readthedocs.io/en/latest/specs/tls.html), one request at a
time; nothing of it is logged.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from broker.config import Settings

TLS_NAMES = "ketenbus_client_cert_names"
"""Our key in the TLS extension: every name of the verified certificate, in order."""


def peer_names(cert: dict[str, Any] | None) -> tuple[str, ...]:
    """The subject common names and DNS alternative names of a *verified* peer certificate
    (``SSLObject.getpeercert()``), in that order, without repeats."""
    if not cert:
        return ()
    names = [
        value
        for rdn in cert.get("subject", ())
        for key, value in rdn
        if key == "commonName" and isinstance(value, str)
    ]
    names += [v for k, v in cert.get("subjectAltName", ()) if k == "DNS" and isinstance(v, str)]
    return tuple(dict.fromkeys(names))


class PeerNamesProtocol(H11Protocol):
    """uvicorn's h11 protocol, which adds the client certificate's names to each request's
    scope (``extensions.tls``)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        names = peer_names(ssl_object.getpeercert()) if ssl_object is not None else ()
        if not names:
            return
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope.get("type") == "http":
                ext = dict(scope.get("extensions") or {})
                ext["tls"] = {**ext.get("tls", {}), "client_cert_name": names[0],
                              TLS_NAMES: names}
                scope = {**scope, "extensions": ext}
            await inner(scope, receive, send)

        self.app = app


def names_of(scope: Any) -> tuple[str, ...]:
    """The verified client certificate's names of a request, or ()."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    names = tls.get(TLS_NAMES, ())
    return tuple(n for n in names if isinstance(n, str))


def server_config(app: Any, settings: Settings, host: str, port: int, **kw: Any) -> uvicorn.Config:
    """The uvicorn configuration of the intake: HTTPS (and client certificates) when the
    settings name the files, plain HTTP otherwise."""
    if settings.zvh_http_tls_certfile is None:
        return uvicorn.Config(app, host=host, port=port, **kw)
    tls: dict[str, Any] = {
        "ssl_certfile": str(settings.zvh_http_tls_certfile),
        "ssl_keyfile": str(settings.zvh_http_tls_keyfile),
    }
    if settings.zvh_http_tls_client_ca is not None:
        tls.update(ssl_ca_certs=str(settings.zvh_http_tls_client_ca),
                   ssl_cert_reqs=ssl.CERT_OPTIONAL)
    return uvicorn.Config(app, host=host, port=port, http=PeerNamesProtocol, **tls, **kw)

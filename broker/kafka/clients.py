"""Kafka clients built from :class:`~broker.config.Settings`, so every client uses the same
bootstrap servers, TLS and SASL settings and a recognisable client id.

Producer defaults are chosen for at-least-once delivery of FHIR messages and for the measured
behaviour of aiokafka 0.14 against Tansu and Kafka: bigger batches matter more than anything
else for aiokafka's produce rate.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context
from faststream.kafka import KafkaBroker
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from broker.config import ConfigError, Problem, Settings, env_name

#: Producer defaults; each can be overridden per call.
PRODUCER_DEFAULTS: dict[str, Any] = {
    # Wait for all in-sync replicas: a referral must not vanish with a broker.
    "acks": "all",
    # A few ms of batching; the FHIR layer, not Kafka, is the throughput limit.
    "linger_ms": 5,
    # aiokafka's 16 KiB default batch halves the produce rate (each batch is one request/object
    # on Tansu). 512 KiB stays well below Apache Kafka's default per-batch limit
    # (message.max.bytes, about 1 MiB), which a 1 MiB batch plus overhead would exceed.
    "max_batch_size": 512 * 1024,
    # The embedded Tansu broker cannot do idempotent producing with aiokafka: aiokafka only
    # speaks InitProducerId v0 and Tansu's memory store rejects it (UnknownError -1 at start()).
    # Consumers de-duplicate on the message id instead (at-least-once delivery).
    "enable_idempotence": False,
}

#: Consumer defaults: start from the beginning of a topic the group has not seen (never skip a
#: message; also avoids Tansu's wrong ListOffsets(LATEST)) and commit only after handling.
CONSUMER_DEFAULTS: dict[str, Any] = {
    "auto_offset_reset": "earliest",
    "enable_auto_commit": False,
}


def build_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL/SASL_SSL, or None for plaintext protocols.

    Loaded step by step so that a bad file is reported under its own setting.
    """
    if not settings.uses_ssl:
        return None
    try:
        context: ssl.SSLContext = create_ssl_context(cafile=settings.ssl_cafile)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError([Problem("ssl_cafile", f"cannot load CA certificate: {exc}")]) from None
    if settings.ssl_certfile is not None:
        password = settings.ssl_keyfile_password
        try:
            context.load_cert_chain(
                certfile=settings.ssl_certfile,
                keyfile=settings.ssl_keyfile,
                password=password.get_secret_value() if password else None,
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                [
                    Problem(
                        "ssl_certfile",
                        f"cannot load client certificate/key ({env_name('ssl_keyfile')}): {exc}",
                    )
                ]
            ) from None
    return context


def _bootstrap(settings: Settings) -> str:
    if settings.bootstrap_servers is None:
        raise ConfigError(
            [
                Problem(
                    "bootstrap_servers",
                    "not set; start the embedded broker with broker.kafka.kafka_connection() "
                    "and use settings.with_bootstrap(bootstrap), or set it to host:port",
                )
            ]
        )
    return settings.bootstrap_servers


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments shared by every aiokafka client: bootstrap servers and security."""
    options: dict[str, Any] = {
        "bootstrap_servers": _bootstrap(settings),
        "security_protocol": settings.security_protocol,
    }
    context = build_ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.uses_sasl:
        password = settings.sasl_password
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def target_options(target: Settings | str) -> dict[str, Any]:
    """Client options for either full settings or a bare plaintext ``host:port`` bootstrap."""
    if isinstance(target, Settings):
        return client_options(target)
    return {"bootstrap_servers": target, "security_protocol": "PLAINTEXT"}


def client_id(settings: Settings, role: str) -> str:
    """``<prefix>-<role>``, e.g. ``ketenbus-router-producer``."""
    return f"{settings.client_id_prefix}-{role}"


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """An aiokafka producer (not started) with :data:`PRODUCER_DEFAULTS`."""
    kwargs = {
        **client_options(settings),
        "client_id": client_id(settings, "producer"),
        **PRODUCER_DEFAULTS,
        **overrides,
    }
    return AIOKafkaProducer(**kwargs)


#: Fetch wait of a consumer that reads a topic to its end at start (the consent view, an audit
#: chain's tail, a journal). The embedded broker answers a fetch only when its wait is over, even
#: with records waiting, so every round trip of such a read cost the default 500 ms: a router
#: start spent 0.6 s each on its consent view and its chain's tail (measured, issue 19).
REPLAY_FETCH_WAIT_MS = 50


def make_consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """An aiokafka consumer (not started) with :data:`CONSUMER_DEFAULTS`.

    ``group_id`` is required so callers decide between a consumer group and ``assign()``
    (``None``). Pass no topics to ``assign()`` partitions yourself.
    """
    role = f"consumer-{group_id}" if group_id else "consumer"
    kwargs = {
        **client_options(settings),
        "client_id": client_id(settings, role),
        "group_id": group_id,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        **CONSUMER_DEFAULTS,
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **kwargs)


def make_admin(settings: Settings | str, **overrides: Any) -> AIOKafkaAdminClient:
    """An aiokafka admin client (not started)."""
    cid = client_id(settings, "admin") if isinstance(settings, Settings) else "ketenbus-admin"
    return AIOKafkaAdminClient(**{**target_options(settings), "client_id": cid, **overrides})


def faststream_security(settings: Settings) -> BaseSecurity | None:
    """The FastStream security object equivalent to :func:`client_options`."""
    context = build_ssl_context(settings)
    if not settings.uses_sasl:
        return BaseSecurity(ssl_context=context) if context is not None else None
    password = settings.sasl_password
    user, secret = settings.sasl_username or "", password.get_secret_value() if password else ""
    use_ssl = settings.uses_ssl
    if settings.sasl_mechanism == "SCRAM-SHA-256":
        return SASLScram256(user, secret, ssl_context=context, use_ssl=use_ssl)
    if settings.sasl_mechanism == "SCRAM-SHA-512":
        return SASLScram512(user, secret, ssl_context=context, use_ssl=use_ssl)
    return SASLPlaintext(user, secret, ssl_context=context, use_ssl=use_ssl)


def faststream_broker(settings: Settings, **kw: Any) -> KafkaBroker:
    """A FastStream ``KafkaBroker`` with the same bootstrap, security and producer defaults."""
    kwargs: dict[str, Any] = {
        "client_id": client_id(settings, "faststream"),
        "security": faststream_security(settings),
        **PRODUCER_DEFAULTS,
        **kw,
    }
    return KafkaBroker(_bootstrap(settings), **kwargs)

"""One way for every command to get a Kafka: the configured one, or a private embedded broker.

``KETENBUS_BOOTSTRAP_SERVERS`` set: check that it answers (a clear error beats aiokafka retrying
a wrong address forever), then hand it out. Not set: start an :class:`EmbeddedBroker` for the
lifetime of the ``async with`` block.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broker.config import ConfigError, Settings, env_name
from broker.kafka.embedded import EmbeddedBroker
from broker.kafka.errors import KafkaUnavailableError
from broker.kafka.probe import probe

log = logging.getLogger(__name__)


@asynccontextmanager
async def kafka_connection(settings: Settings, *, timeout: float = 10.0) -> AsyncIterator[str]:
    """Yield a bootstrap address (``host:port[,...]``) that answers Kafka requests.

    Combine it with the settings for clients: ``settings.with_bootstrap(bootstrap)``.
    """
    if settings.bootstrap_servers is not None:
        try:
            await probe(settings, timeout=timeout)
        except ConfigError:
            raise
        except Exception as exc:
            detail = str(exc) or type(exc).__name__
            raise KafkaUnavailableError(
                f"{env_name('bootstrap_servers')}={settings.bootstrap_servers}: no Kafka answered "
                f"within {timeout:.0f} s ({detail}). Check the address and the security settings "
                f"({env_name('security_protocol')}={settings.security_protocol}), or unset it to "
                "use the embedded broker."
            ) from exc
        yield settings.bootstrap_servers
        return
    async with EmbeddedBroker(state_dir=settings.state_dir) as embedded:
        log.info(
            "no %s set; using the embedded broker on %s",
            env_name("bootstrap_servers"),
            embedded.bootstrap,
        )
        yield embedded.bootstrap

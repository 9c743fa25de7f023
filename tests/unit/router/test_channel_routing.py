"""The router and the channel layer (issue 16 §6, AVG art. 17; ``docs/erasure.md``): what it
delivers on ``out.<party>`` is under the person's key on that party's channel, so the party's
private key alone reads nothing of the person; a message whose layer does not open on its
sender's channel -- garbled, or made on another party's channel with that party's valid key --
is refused with its reason to ``rejected``, told to its sender and audited, never dropped."""

from __future__ import annotations

import random

import pytest

from broker.apps.deployment import Deployment, create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.policy import default_policy
from broker.router.facts import FactKind
from broker.router.pipeline import Pipeline
from broker.router.records import Incoming
from broker.trust import open_sealed, seal_for
from broker.trust.datakeys import CARRIED_PREFIX, channel_subject, message_context, seal_carried
from broker.trust.party import PartyClient
from schemas import topics
from schemas.messaging import dumps, parse_message, read_meta
from tests.unit.router.test_pipeline import consent_in, referral_in, reply_of, to

ZVH, PROVIDER = "zvh-midden-nederland", "fivoor"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return create_local(tmp_path_factory.mktemp("dep"), demo.PARTIES)


@pytest.fixture
def pipeline(deployment: Deployment) -> Pipeline:
    return Pipeline(deployment.router_state(default_policy()))


def test_a_delivery_is_under_the_person_s_channel_key_not_only_the_recipient_s(
    pipeline: Pipeline, deployment: Deployment
) -> None:
    zvh = deployment.party_client(ZVH)
    person = synthetic_bsn(random.Random())
    pipeline.route(consent_in(zvh, person))
    rec = referral_in(zvh, person)
    assert person.encode() not in rec.value
    delivered = to(pipeline.route(rec).records, f"out.{PROVIDER}")
    assert len(delivered) == 1
    d = delivered[0]
    # the provider's private key alone: the envelope opens, the person does not
    bare = open_sealed(d.key, d.value, d.headers, registry=deployment.registry,
                       keyring=deployment.keyring(PROVIDER))  # fmt: skip
    assert bare.payload.startswith(CARRIED_PREFIX)
    assert person.encode() not in bare.payload and b"Test" not in bare.payload
    # with its channel store (its KEK), the provider reads its delivery
    provider = deployment.party_client(PROVIDER)
    assert person.encode() in provider.open(d.key, d.value, d.headers).payload


def hostile(client: PartyClient, payload: bytes, bundle: dict, person: str) -> Incoming:
    """``bundle``'s envelope, validly signed by ``client``, around ``payload``."""
    meta = read_meta(bundle)
    s = seal_for(payload, client.keys, client.registry, "router", event=meta.event.value,
                 message_id=meta.message_id,
                 pseudonym=client.pseudonyms.pseudonym(client.party_id, person),
                 timestamp=meta.timestamp)  # fmt: skip
    return Incoming(topics.IN_REFERRAL.name, s.key, s.value, list(s.headers))


def test_a_layer_that_does_not_open_on_its_sender_s_channel_is_refused_and_told(
    pipeline: Pipeline, deployment: Deployment
) -> None:
    zvh = deployment.party_client(ZVH)
    person = synthetic_bsn(random.Random())
    pipeline.route(consent_in(zvh, person))
    good = referral_in(zvh, person)
    opened = open_sealed(good.key, good.value, good.headers, registry=deployment.registry,
                         keyring=deployment.keyring(deployment.router_id))  # fmt: skip
    channels = pipeline.state.channels
    assert channels is not None
    bundle = parse_message(channels.open(ZVH, opened.payload, opened.meta.message_id)).bundle
    garbled = bytearray(zvh.inner(dumps(bundle), person, bundle["id"]))
    garbled[-1] ^= 1
    # made on the provider's channel, with the provider's own valid key, sent by the ZVH
    provider = deployment.party_client(PROVIDER)
    assert provider.channel is not None
    elsewhere, _ = seal_carried(provider.channel, provider.channel.owner(channel_subject(person)),
                                dumps(bundle), context=message_context(bundle["id"]))  # fmt: skip
    for payload in (bytes(garbled), elsewhere):
        result = Pipeline(deployment.router_state(default_policy())).route(
            hostile(zvh, payload, bundle, person)
        )
        assert len(to(result.records, topics.REJECTED.name)) == 1
        assert not to(result.records, f"out.{PROVIDER}")
        assert reply_of(zvh, result.records)["reasons"] == ["decrypt-failed"]
        refusals = [f for f in result.facts if f.kind is FactKind.REFUSAL]
        assert [f.reason for f in refusals] == ["decrypt-failed"]

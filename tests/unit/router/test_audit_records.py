"""Every field ``docs/audit-format.md`` §5 promises, asserted in an AuditEvent the router really
wrote: a referral goes through the routing pipeline, its facts through the audit sink, and the
records are read back from the bytes the sink would produce to the ``audit`` topic.

The conflict-of-duties referral (AVG art. 9(2)(g) with UAVG art. 30(3)(a) for the care provider;
a professional's decision) carries a justification, the deciding professional and a citation:
they stand nowhere in clear, and the compliance role opens them from the sealed detail."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from adapters.zvh.format import parse_document
from broker.apps.deployment import Deployment, LocalParty, create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.audit import AuditChain, ChainRecord, canonical, decode_rows, open_sealed, verify
from broker.audit.signers import signers_from_registry
from broker.config import Settings
from broker.policy import default_policy
from broker.policy.loader import load_policy_text
from broker.router.audit_sink import AuditSink, compliance_reader
from broker.router.pipeline import AUDIT_DOMAIN, Pipeline
from broker.router.records import Incoming
from broker.trust.party import PartyClient
from schemas import topics
from schemas.flows.consent import consent_message
from schemas.flows.referral import referral_message
from schemas.messaging import BasisDetail, MessageMeta
from schemas.vocab import EventCode, LegalBasis, PartyRole, PurposeOfUse

ZVH, PROVIDER, WEB = "zvh-midden-nederland", "fivoor", "dashboard"
JUSTIFICATION = "Acuut gevaar voor derden; geen toestemming mogelijk."
PROFESSIONAL = "procesregisseur J. de Vries, BIG 19012345601"
CITATION = "Wvggz art. 8:32"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    web = LocalParty(WEB, "Landelijk dashboard", PartyRole.CAPACITY_DASHBOARD)
    return create_local(tmp_path_factory.mktemp("dep"), [*demo.PARTIES, web])


def narrow_policy() -> Any:
    """The default policy, but conflict of duties lets the coordinating provider see no legal
    title: so a permit has a withheld category."""
    text = resources.files("broker.policy").joinpath("default-policy.yaml").read_text()
    old = """          - basis: conflict-of-duties
            purposes: [safety]

  assessment-outcome:"""
    assert old in text
    new = """          - basis: conflict-of-duties
            purposes: [safety]
            categories: [identity, contact, referral-signal, risk-assessment]

  assessment-outcome:"""
    return load_policy_text(text.replace(old, new))


def sink(deployment: Deployment) -> AuditSink:
    keys = deployment.router_state(default_policy()).keys
    reader = compliance_reader(deployment.registry, datetime.now(UTC))
    s = AuditSink(Settings(), keys, reader=reader)
    s._chain = AuditChain(s.chain_id, keys.signing, keys.key_id)
    return s


def referral(client: PartyClient, person: str, basis: LegalBasis, detail: BasisDetail | None
             ) -> Incoming:
    p = {"bsn": person, "family_name": "Test", "birth_date": "1980-01-01", "municipality": "0344"}
    doc = parse_document(demo.referral("CASE-1", "midden-nederland", p, date.today()))
    ref = doc.to_referral(client.party_id)  # type: ignore[union-attr]
    purpose = PurposeOfUse.SAFETY if basis is LegalBasis.CONFLICT_OF_DUTIES else PurposeOfUse.COC
    meta = MessageMeta.new(EventCode.REFERRAL, client.party_id, purpose, basis,
                           basis_detail=detail)
    key, value, headers = client.seal_message(referral_message(ref, meta), person)
    return Incoming(topics.IN_REFERRAL.name, key, value, headers)


def consent(client: PartyClient, person: str) -> Incoming:
    doc = parse_document(demo.consent("c-1", person, date.today()))
    rec = doc.to_record(client.party_id)  # type: ignore[union-attr]
    meta = MessageMeta.new(EventCode.CONSENT, client.party_id, PurposeOfUse.COC, LegalBasis.CONSENT)
    key, value, headers = client.seal_message(consent_message(rec, meta), person)
    return Incoming(topics.IN_CONSENT.name, key, value, headers)


def written(deployment: Deployment, pipeline: Pipeline, *recs: Incoming) -> list[bytes]:
    s = sink(deployment)
    values: list[bytes] = []
    for rec in recs:
        values += s.prepare(pipeline.route(rec).facts)
    return values


def events(values: list[bytes]) -> dict[str, dict[str, Any]]:
    """The events by type code (the last of each type)."""
    return {ChainRecord.decode(v).event["type"]["code"]: ChainRecord.decode(v).event
            for v in values}


def entity(event: dict[str, Any], code: str) -> dict[str, Any]:
    """An entity found by type, as readers must (not by index)."""
    [e] = [e for e in event["entity"] if e["type"]["code"] == code]
    return e


def details(event: dict[str, Any]) -> dict[str, Any]:
    return {d["type"]: d.get("valueString", d.get("valueBase64Binary"))
            for d in entity(event, "2").get("detail", [])}


@pytest.fixture(scope="module")
def cod(deployment: Deployment) -> tuple[list[bytes], str]:
    """A conflict-of-duties referral routed under the narrow policy; (records, person)."""
    person = synthetic_bsn(random.Random())
    pipeline = Pipeline(deployment.router_state(narrow_policy()))
    zvh = deployment.party_client(ZVH)
    detail = BasisDetail(CITATION, JUSTIFICATION, PROFESSIONAL)
    values = written(deployment, pipeline,
                     referral(zvh, person, LegalBasis.CONFLICT_OF_DUTIES, detail))
    return values, person


def test_the_records_verify_and_carry_no_sensitive_text_in_clear(
        deployment: Deployment, cod: tuple[list[bytes], str]) -> None:
    values, person = cod
    assert verify(values, signers_from_registry(deployment.registry)).ok
    text = b"\n".join(values).decode()
    for secret in (JUSTIFICATION, PROFESSIONAL, "de Vries", CITATION, "8:32", person):
        assert secret not in text


def test_permit_type_outcome_flow_and_agents(cod: tuple[list[bytes], str]) -> None:
    ev = events(cod[0])["decision-permit"]
    assert (ev["outcome"], ev["outcomeDesc"], ev["action"]) == ("0", "permitted", "E")
    assert ev["subtype"][0]["code"] == "referral"
    sender, recipient, professional = ev["agent"]
    assert sender["who"]["identifier"]["value"] == ZVH and sender["requestor"] is True
    assert sender["role"][0]["coding"][0]["code"] == "zvh"
    assert recipient["who"]["identifier"]["value"] == PROVIDER
    assert recipient["role"][0]["coding"][0]["code"] == "coordinating-provider"
    assert professional["type"]["coding"][0]["code"] == "responsible-professional"
    assert "who" not in professional and "name" not in professional  # the name is sealed


def test_purpose_and_legal_basis(cod: tuple[list[bytes], str]) -> None:
    ev = events(cod[0])["decision-permit"]
    assert ev["purposeOfEvent"][0]["coding"][0]["code"] == "safety"
    assert ev["agent"][0]["policy"][0].endswith("#conflict-of-duties")
    assert details(ev)["legal-basis"] == "conflict-of-duties"


def grounds(event: dict[str, Any]) -> tuple[str, list[str], str]:
    """The clear grounds items of the message entity (design audit-record-v2 §4)."""
    items = entity(event, "2").get("detail", [])
    exceptions = [d["valueString"] for d in items if d["type"] == "special-category-exception"]
    return details(event)["gdpr-basis"], exceptions, details(event)["secrecy-ground"]


def test_the_grounds_stand_in_clear(cod: tuple[list[bytes], str]) -> None:
    """Conflict of duties: AVG art. 6(1)(d), art. 9(2)(c), secrecy lifted by the professional's
    decision; on the permit and on the delivery the router wrote."""
    evs = events(cod[0])
    for kind in ("decision-permit", "delivery"):
        assert grounds(evs[kind]) == ("d", ["art9-2c", "art10-uavg-32"], "conflict-of-duties"), kind


def test_the_grounds_of_a_consent_and_of_a_denial(deployment: Deployment) -> None:
    person = synthetic_bsn(random.Random())
    zvh = deployment.party_client(ZVH)
    pipeline = Pipeline(deployment.router_state(default_policy()))
    values = written(deployment, pipeline, consent(zvh, person),
                     referral(zvh, person, LegalBasis.CONSENT, None))
    permit = events(values)["decision-permit"]
    assert grounds(permit) == ("a", ["art9-2a", "art10-uavg-32"], "consent")
    expired = BasisDetail(None, JUSTIFICATION, PROFESSIONAL, date(2020, 1, 1))
    values = written(deployment, pipeline, referral(
        zvh, synthetic_bsn(random.Random()), LegalBasis.CONFLICT_OF_DUTIES, expired))
    ev = events(values)["decision-deny"]
    assert ev["outcomeDesc"] == "conflict-of-duties-expired"
    assert grounds(ev) == ("d", ["art9-2c", "art10-uavg-32"], "conflict-of-duties")


def test_person_by_pseudonym_in_the_audit_domain(
        deployment: Deployment, cod: tuple[list[bytes], str]) -> None:
    values, person = cod
    ev = events(values)["decision-permit"]
    ident = entity(ev, "1")["what"]["identifier"]
    pipeline = Pipeline(deployment.router_state(default_policy()))
    assert ident["value"] == pipeline.state.pseudonyms.pseudonym(AUDIT_DOMAIN, person)
    assert ident["system"].endswith("/pseudonym/audit")


def test_disclosed_and_withheld_categories(cod: tuple[list[bytes], str]) -> None:
    ev = events(cod[0])["decision-permit"]
    labels = {c["code"] for c in entity(ev, "2")["securityLabel"]}
    assert "legal-title" not in labels and "referral-signal" in labels
    withheld = details(ev)["withheld-categories"].split(",")
    assert "legal-title" in withheld and withheld == sorted(withheld)
    assert not labels & set(withheld)


def test_controles_say_authorised_no_consent_emergency(cod: tuple[list[bytes], str]) -> None:
    assert details(events(cod[0])["decision-permit"])["controles"] == "TFFT"


def test_sealed_detail_opens_for_the_compliance_role_only(
        deployment: Deployment, cod: tuple[list[bytes], str]) -> None:
    values = cod[0]
    rows, bad = decode_rows(values)
    assert not bad
    web = deployment.party_client(WEB).keys
    opened = [r for r in open_sealed(rows, {web.key_id: web.encryption})
              if r.kind == "decision-permit"]
    assert [(r.citation, r.justification, r.professional, r.sealed_state) for r in opened] == [
        (CITATION, JUSTIFICATION, PROFESSIONAL, "opened")]
    # another valid key (the provider's own, or a fresh one under the reader's key id) fails
    provider = deployment.party_client(PROVIDER).keys
    for other in ({provider.key_id: provider.encryption},
                  {web.key_id: X25519PrivateKey.generate()}):
        [row] = [r for r in open_sealed(rows, other) if r.kind == "decision-permit"]
        assert row.sealed_state in ("sealed", "unreadable") and row.justification is None


def test_sealed_detail_moved_to_another_record_does_not_open(
        deployment: Deployment, cod: tuple[list[bytes], str]) -> None:
    ev = events(cod[0])["decision-permit"]
    web = deployment.party_client(WEB).keys
    forged = {**ev, "id": "another-event"}
    rows, _ = decode_rows([canonical({"chain": "router", "seq": 0, "prev": "0" * 64,
                                      "event": forged, "hash": "0" * 64, "sig": "0" * 128,
                                      "kid": "k"})])  # canonical: records are read strictly
    [row] = open_sealed(rows, {web.key_id: web.encryption})
    assert row.sealed_state == "unreadable" and row.professional is None


def test_delivery_event_names_the_topic_and_what_went(cod: tuple[list[bytes], str]) -> None:
    ev = events(cod[0])["delivery"]
    assert (ev["outcome"], ev["outcomeDesc"]) == ("0", "delivered")
    assert ev["agent"][1]["who"]["identifier"]["value"] == PROVIDER
    assert details(ev)["topic"] == f"out.{PROVIDER}"
    assert "legal-title" not in {c["code"] for c in entity(ev, "2")["securityLabel"]}
    assert "sealed" not in details(ev)  # the decision carries the detail, once


def test_consent_relied_on(deployment: Deployment) -> None:
    person = synthetic_bsn(random.Random())
    zvh = deployment.party_client(ZVH)
    pipeline = Pipeline(deployment.router_state(default_policy()))
    values = written(deployment, pipeline, consent(zvh, person),
                     referral(zvh, person, LegalBasis.CONSENT, None))
    ev = events(values)["decision-permit"]
    [c] = [e for e in ev["entity"] if e["type"]["code"] == "Consent"]
    assert c["what"]["reference"] == "Consent/c-1"
    assert "Consent/c-1" in ev["agent"][0]["policy"]
    assert details(ev)["controles"] == "TFTF"
    assert "sealed" not in details(ev) and len(ev["agent"]) == 2
    assert events(values)["consent-change"]["outcomeDesc"]


def test_denial_keeps_its_reason_and_seals_the_detail(deployment: Deployment) -> None:
    zvh = deployment.party_client(ZVH)
    pipeline = Pipeline(deployment.router_state(default_policy()))
    short = BasisDetail(None, "kort", PROFESSIONAL)  # a justification too short to count
    values = written(deployment, pipeline, referral(
        zvh, synthetic_bsn(random.Random()), LegalBasis.CONFLICT_OF_DUTIES, short))
    ev = events(values)["decision-deny"]
    assert (ev["outcome"], ev["outcomeDesc"]) == ("4", "justification-missing")
    assert details(ev)["controles"] == "FFFT" and "sealed" in details(ev)
    assert "delivery" not in events(values)


def test_refusal_before_any_decision(deployment: Deployment) -> None:
    zvh = deployment.party_client(ZVH)
    pipeline = Pipeline(deployment.router_state(default_policy()))
    rec = referral(zvh, synthetic_bsn(random.Random()), LegalBasis.CONSENT, None)
    forged = Incoming(rec.topic, rec.key, rec.value[:-1] + bytes([rec.value[-1] ^ 1]),
                      rec.headers)
    ev = events(written(deployment, pipeline, forged))["refusal"]
    assert ev["outcome"] == "8" and ev["outcomeDesc"]
    assert ev["agent"][0]["who"]["identifier"]["value"] == ZVH
    assert len(ev["agent"]) == 1  # no recipient: refused before any decision


def test_no_compliance_reader_leaves_the_detail_out(tmp_path: Path) -> None:
    deployment = create_local(tmp_path, demo.PARTIES)  # no capacity-dashboard party
    assert compliance_reader(deployment.registry, datetime.now(UTC)) is None
    s = AuditSink(Settings(), deployment.router_state(default_policy()).keys)
    s._chain = AuditChain(s.chain_id, s.keys.signing, s.keys.key_id)
    pipeline = Pipeline(deployment.router_state(narrow_policy()))
    facts = pipeline.route(referral(
        deployment.party_client(ZVH), synthetic_bsn(random.Random()),
        LegalBasis.CONFLICT_OF_DUTIES, BasisDetail(CITATION, JUSTIFICATION, PROFESSIONAL))).facts
    text = b"".join(s.prepare(facts)).decode()
    assert JUSTIFICATION not in text and CITATION not in text and "de Vries" not in text
    assert '"responsible-professional"' in text and '"sealed"' not in text

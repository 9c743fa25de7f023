"""Fuzz targets: every parser of outside input, and the router's input.

Each target is a hypothesis strategy of inputs plus a check that runs the component and asserts
its contract: **no input crashes it; each input is accepted, or refused with a reason**. Anything
but the component's documented refusal (``MessageError`` with issues, ``TrustError`` with a
``Reason``) is a crash. ``Pipeline.route`` must never raise at all.

The same targets run in CI (``test_fuzz.py``, a fixed number of cases), for minutes
(``python -m tests.fuzz --minutes N``) and under atheris (``--engine atheris``). To fuzz a new
parser, add a function with ``@target``. Accepted input must also come out as JSON any reader
takes (no ``NaN`` or ``Infinity`` token, see :func:`strict_json`).
"""

from __future__ import annotations

import copy
import functools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from broker.router.facts import FactKind
from broker.router.records import Incoming, header
from broker.trust import Reason, TrustError
from schemas import topics
from schemas.errors import MessageError
from schemas.messaging import PARTY_ENDPOINT
from tests.fuzz import mutate

# --- the registry ---------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class FuzzTarget:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]

    def __repr__(self) -> str:  # the strategy's repr would quote every seed
        return f"FuzzTarget({self.name!r})"


TARGETS: dict[str, FuzzTarget] = {}


def target(name: str, strategy: Callable[[], st.SearchStrategy[Any]]) -> Callable[..., Any]:
    """Register ``check`` under ``name``; the strategy is built lazily (seeds need imports)."""

    def register(check: Callable[[Any], None]) -> Callable[[Any], None]:
        TARGETS[name] = FuzzTarget(name, st.deferred(strategy), check)
        return check

    return register


# --- what "refused with a reason" means -----------------------------------------------------------

REASONS = {str(r) for r in Reason}


def refused(err: MessageError) -> None:
    """A ``MessageError`` is a proper refusal: issues, each with a code and a message or reason."""
    assert err.issues, "a refusal without issues"
    assert err.reason, "a refusal without a reason"
    for issue in err.issues:
        assert issue.code, issue
        assert issue.message or issue.reason, issue
        assert "Traceback" not in issue.message


def trust_refused(err: TrustError) -> None:
    assert err.reason in REASONS, err.reason
    assert err.message


# --- adapters: the ZVH format ---------------------------------------------------------------------


def _zvh_ingress(doc: Any) -> None:
    """What the ZVH adapter does with an accepted document (``ZvhAdapter.submit`` without
    Kafka): it becomes a FHIR message that must pass full validation."""
    from adapters.zvh.format import ZvhReferral
    from schemas.flows.consent import consent_message
    from schemas.flows.referral import referral_message
    from schemas.messaging import MessageMeta, dumps, validate_fhir
    from schemas.vocab import EventCode, LegalBasis, PurposeOfUse

    if isinstance(doc, ZvhReferral):
        meta = MessageMeta.new(
            EventCode.REFERRAL,
            "zvh-voorbeeld",
            PurposeOfUse.COC,
            doc.basis.kind,
            basis_detail=doc.basis.detail(),
        )
        bundle = referral_message(doc.to_referral("zvh-voorbeeld"), meta)
    else:
        meta = MessageMeta.new(
            EventCode.CONSENT, "zvh-voorbeeld", PurposeOfUse.COC, LegalBasis.CONSENT
        )
        bundle = consent_message(doc.to_record("zvh-voorbeeld"), meta)
    validate_fhir(bundle)  # a MessageError here is a crash: the document was accepted
    strict_json(dumps(bundle))  # and it is sealed as UTF-8 JSON any reader takes


def _zvh_bytes() -> st.SearchStrategy[bytes]:
    docs = mutate.zvh_documents()
    return st.one_of(
        mutate.json_inputs([*docs, docs]),  # single documents and a batch (JSON array)
        st.sampled_from(docs).map(mutate.dumps_any).map(lambda b: b"\xef\xbb\xbf" + b),
        st.sampled_from(docs).flatmap(mutate.with_raw_token),
    )


def file_items(parse: Callable[[bytes], Any], raw: bytes, accepted: Callable[[Any], None]) -> None:
    """Run a file parser: a refused file or item must be a proper refusal, and every accepted
    item goes on to ``accepted`` (what the adapter does with it next)."""
    try:
        items = parse(raw)
    except MessageError as err:
        refused(err)
        return
    for _, item in items:
        if isinstance(item, MessageError):
            refused(item)
        else:
            accepted(item)


@target("zvh.parse_bytes", _zvh_bytes)
def check_zvh_parse_bytes(raw: bytes) -> None:
    from adapters.zvh.format import parse_bytes

    file_items(parse_bytes, raw, _zvh_ingress)


def _http_bodies() -> st.SearchStrategy[bytes]:
    docs = mutate.zvh_documents()
    return st.one_of(
        _zvh_bytes(),
        st.sampled_from(docs).map(mutate.dumps_any).map(lambda b: b.decode().encode("utf-16")),
        st.integers(1, 200).map(lambda n: b"[" * n + b"]" * n),
    )


@target("zvh.http_body", _http_bodies)
def check_zvh_http_body(raw: bytes) -> None:
    """What ``POST /referrals`` does with a body before Kafka (adapters/zvh/http.py): the
    shared reader (size, UTF-8, depth, strict JSON), then the document. A refusal's dead-letter
    detail never repeats a number of 8+ digits from the body (a BSN)."""
    import re

    from adapters.common.limits import InputLimits, read_json, safe_detail
    from adapters.zvh.format import parse_document

    try:
        data = read_json(raw, InputLimits())
        if isinstance(data, dict):
            data.setdefault("type", "referral")
        doc = parse_document(data)
    except MessageError as err:
        refused(err)
        detail = safe_detail(err)
        text = raw.decode("utf-8", "replace")
        for digits in re.findall(r"\d{8,}", text):
            assert digits not in detail, "a dead-letter detail repeats input"
        return
    _zvh_ingress(doc)


@target("zvh.parse_document", lambda: mutate.json_trees(mutate.zvh_documents()))
def check_zvh_parse_document(data: Any) -> None:
    from adapters.zvh.format import parse_document

    try:
        doc = parse_document(data)
    except MessageError as err:
        refused(err)
        return
    _zvh_ingress(doc)


def _outbox_messages() -> st.SearchStrategy[bytes]:
    return mutate.json_inputs(mutate.examples_of("response") + mutate.examples_of("referral"))


@target("zvh.to_zvh (outbox)", _outbox_messages)
def check_zvh_outbox(raw: bytes) -> None:
    """A delivery the ZVH adapter writes to its outbox (read as the adapter runtime reads it)."""
    import json

    from adapters.zvh.translate import to_zvh
    from schemas.messaging import parse_message

    try:
        doc = to_zvh(parse_message(raw, full=False))
    except MessageError as err:
        refused(err)
        return
    json.dumps(doc, ensure_ascii=False)  # the outbox file must be writable


def strict_json(raw: bytes | str) -> Any:
    """What a recipient's JSON reader sees: no ``NaN`` or ``Infinity`` token may be written."""
    import json

    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} written into JSON that was accepted")

    return json.loads(raw, parse_constant=refuse)


# --- adapters: the ZVH CSV batch --------------------------------------------------------------


@target("zvh.parse_csv", lambda: mutate.text_inputs([mutate.ZVH_CSV.encode()]))
def check_zvh_parse_csv(raw: bytes) -> None:
    from adapters.zvh.csvbatch import parse_csv

    file_items(parse_csv, raw, _zvh_ingress)


# --- adapters: the provider's inbox (CSV per flow, FHIR JSON) -------------------------------------


def _provider_submission(sub: Any) -> None:
    """What ``ProviderAdapter.submit`` does with an accepted item before Kafka: the flow's
    message, validated where it is made (a refusal there is reported per item), as JSON any
    reader takes. A claim goes to the claims desk first (``tests/unit/financing``)."""
    from adapters.provider.inputs import DEFAULT_PURPOSE, ClaimInput, Submission
    from schemas.flows.claim import Claim
    from schemas.messaging import MessageMeta, dumps, new_id, validate_fhir

    assert isinstance(sub, Submission), sub
    if isinstance(sub.model, ClaimInput):
        assert sub.model.period_start <= sub.model.period_end, sub.model
        assert sub.model.quantity >= 0 and sub.model.unit_price_cents >= 0, sub.model
        return
    assert not isinstance(sub.model, Claim)
    purpose, basis = DEFAULT_PURPOSE[sub.event]
    meta = MessageMeta(
        message_id=sub.message_id or new_id(),
        event=sub.event,
        sender=mutate.PROVIDER,
        timestamp=datetime.now(UTC),
        purpose=sub.purpose or purpose,
        legal_basis=sub.basis or basis,
        destinations=sub.destinations or ("zvh-voorbeeld",),
        basis_detail=sub.detail,
    )
    bundle = sub.flow.to_message(sub.model, meta)
    try:
        validate_fhir(bundle)
    except MessageError as err:
        refused(err)
        return
    strict_json(dumps(bundle))


@target(
    "provider.parse_csv", lambda: mutate.text_inputs([c.encode() for c in mutate.PROVIDER_CSVS])
)
def check_provider_parse_csv(raw: bytes) -> None:
    from adapters.provider.inputs import parse_csv

    file_items(lambda b: parse_csv(b, mutate.PROVIDER), raw, _provider_submission)


def _provider_json() -> st.SearchStrategy[bytes]:
    seeds = mutate.provider_json_seeds()
    return st.one_of(
        mutate.json_inputs(seeds), st.sampled_from(seeds).flatmap(mutate.with_raw_token)
    )


@target("provider.parse_json", _provider_json)
def check_provider_parse_json(raw: bytes) -> None:
    from adapters.provider.inputs import parse_json

    file_items(lambda b: parse_json(b, mutate.PROVIDER), raw, _provider_submission)


# --- adapters: the payers' answer files ---------------------------------------------------------


@functools.cache
def payer_answers() -> dict[str, list[bytes]]:
    """Answer files as each payer format writes them: accepted, paid and rejected."""
    from datetime import date

    from adapters.financing.rules import Product
    from adapters.payer.formats import gds, vektis, vws, wlz, wmo
    from schemas.vocab import ClaimService
    from tests.unit.adapters import payer_samples as s

    decl = vektis.write_declaration(s.COORDINATION_INSURER)
    zpm = Product(
        format="gds", payer="any", service=ClaimService.TREATMENT, code="CO0042", codelist="071"
    )
    gds801 = gds.write_declaration(
        s.COORDINATION_INSURER.model_copy(
            update={"service": ClaimService.TREATMENT, "quantity": 1, "amount_cents": 2_000}
        ),
        zpm,
    )
    vws_rows = [
        {
            "reference": "T-2020-0099", "bsn": "999990019", "decided_on": "2021-01-05",
            "outcome": "advanced", "approved_cents": "30000", "paid_cents": "30000",
            "paid_on": "2021-01-06",
        },
        {
            "reference": "T-2020-0100", "bsn": "999990019", "decided_on": "2021-01-05",
            "outcome": "rejected", "rejection_reason": "wrong-payer", "note": "Zvw",
        },
    ]  # fmt: skip
    return {
        "wmo": [
            wmo.write_answer(s.REGISTRATION, "2020-12-01"),
            wmo.write_answer(s.REGISTRATION, "2020-12-01", paid=("2020-12-15", 200_000)),
            wmo.write_answer(s.REGISTRATION, "2020-12-01", codes=("0611",)),
        ],
        "vektis": [
            vektis.write_answer(decl, date(2024, 1, 10)),
            vektis.write_answer(
                decl, date(2024, 1, 10), approved_cents=30_000, paid_on=date(2024, 1, 20)
            ),
            vektis.write_answer(decl, date(2024, 1, 10), codes=("R001",)),
        ],
        "wlz": [
            wlz.write_answer(s.TREATMENT_WLZ, "2024-04-20", approved_cents=40_000),
            wlz.write_answer(s.TREATMENT_WLZ, "2024-04-20", codes=("R002",)),
        ],
        "vws": [vws.write_answer(vws_rows)],
        "gds": [
            gds.write_answer(gds801, "2024-01-10"),
            gds.write_answer(gds801, "2024-01-10", codes=("9284",)),
        ],
    }


def _answer_inputs(fmt: str) -> Callable[[], st.SearchStrategy[bytes]]:
    def strategy() -> st.SearchStrategy[bytes]:
        seeds = payer_answers()[fmt]
        seed = st.sampled_from(seeds)
        if fmt in ("wmo", "gds"):
            return st.one_of(seed.flatmap(mutate.xml_mutated), seed.flatmap(mutate.mutated_bytes))
        if fmt in ("vektis", "wlz"):
            return st.one_of(
                seed.flatmap(mutate.fixed_width_mutated), seed.flatmap(mutate.mutated_bytes)
            )
        return mutate.text_inputs(seeds)

    return strategy


def _answer_check(fmt: str) -> Callable[[bytes], None]:
    def check(raw: bytes) -> None:
        from datetime import date

        from adapters.payer.formats import gds, vektis, vws, wlz, wmo
        from adapters.payer.formats.common import AnswerItem
        from schemas.vocab import ClaimOutcome

        read = {"wmo": wmo, "vektis": vektis, "wlz": wlz, "vws": vws, "gds": gds}[fmt].read_answer
        try:
            items = read(raw)
        except MessageError as err:
            refused(err)
            return
        for item in items:
            if isinstance(item, MessageError):
                refused(item)
                continue
            assert isinstance(item, AnswerItem), item
            assert item.reference and isinstance(item.decided_on, date), item
            assert isinstance(item.outcome, ClaimOutcome), item
            if item.declaration:  # a WMO325 answer to a whole declaration: a signed total
                assert item.bsn == "" and fmt == "wmo", item
                continue
            if fmt == "gds" and item.bsn == "":  # a GDS802 to DJI names no BSN (VC017)
                pass
            else:
                assert len(item.bsn) == 9 and item.bsn.isdigit(), "an answer about no valid BSN"
            for cents in (item.approved_cents, item.paid_cents):
                assert cents is None or (isinstance(cents, int) and cents >= 0), item

    return check


for _fmt in ("wmo", "vektis", "wlz", "vws", "gds"):
    target(f"payer.{_fmt}.read_answer", _answer_inputs(_fmt))(_answer_check(_fmt))


def _precondition_inputs() -> st.SearchStrategy[bytes]:
    from datetime import date
    from pathlib import Path

    from adapters.payer.formats import fz, iwlz

    example = Path(__file__).parents[1] / "standards" / "iwmo" / "example-WMO301.xml"
    placement = fz.Placement("4711", "999990019", "73730101", date(2024, 1, 1))
    aw35 = iwlz.write_aw35(
        "73730101", "5507", "999990019", date(1985, 4, 3), "T", "1", date(2024, 2, 5), "A",
        date(2024, 2, 6),
    )  # fmt: skip
    seed = st.sampled_from(
        [example.read_bytes(), fz.write_placement(placement, "P", date(2024, 1, 1)), aw35]
    )
    return st.one_of(seed.flatmap(mutate.xml_mutated), seed.flatmap(mutate.mutated_bytes))


@target("payer.preconditions.read", _precondition_inputs)
def check_read_preconditions(raw: bytes) -> None:
    """A payer's allocation message in a provider's inbox (WMO301, FZ821, AW33, AW35): read
    whole or refused."""
    from adapters.payer.formats.preconditions import read_preconditions

    try:
        found = read_preconditions(raw)
    except MessageError as err:
        refused(err)
        return
    assert found
    for p in found:
        assert len(p.bsn) == 9 and p.bsn.isdigit() and len(p.receiver) == 8, p
        a = p.allocation
        assert a.number.isdigit() and len(a.payer) == 4 and (a.end is None or a.end >= a.start)


# --- schemas: messaging and every flow ------------------------------------------------------------


def _all_examples() -> list[Any]:
    return list(mutate.example_messages().values())


def _messages() -> st.SearchStrategy[bytes]:
    seeds = _all_examples()
    return st.one_of(
        mutate.json_inputs(seeds), st.sampled_from(seeds).flatmap(mutate.with_raw_token)
    )


@target("messaging.parse_message", _messages)
def check_parse_message(raw: bytes) -> None:
    from schemas.messaging import dumps, parse_message

    for full in (False, True):
        try:
            msg = parse_message(raw, full=full)
        except MessageError as err:
            refused(err)
            continue
        strict_json(dumps(msg.bundle))  # what the router seals for the recipient


@target("messaging.read_meta", lambda: mutate.json_trees(_all_examples()))
def check_read_meta(bundle: Any) -> None:
    from schemas.messaging import read_meta

    try:
        read_meta(bundle)
    except MessageError as err:
        refused(err)


def _flow_check(flow_name: str) -> Callable[[bytes], None]:
    def check(raw: bytes) -> None:
        from schemas.flows.registry import BY_NAME
        from schemas.messaging import parse_message

        flow = BY_NAME[flow_name]
        try:
            parsed = parse_message(raw, full=False)
        except MessageError as err:
            refused(err)
            return
        if parsed.meta.event is not flow.event:
            return
        try:
            result = flow.from_message(parsed)
        except MessageError as err:
            refused(err)
            return
        assert isinstance(result, flow.model)

    return check


def _register_flows() -> None:
    from schemas.flows.registry import FLOWS

    for flow in FLOWS:
        name = flow.name

        def strategy(name: str = name) -> st.SearchStrategy[bytes]:
            seeds = mutate.examples_of(name)
            return mutate.json_inputs(seeds)

        target(f"flows.{flow.from_message.__name__}", strategy)(_flow_check(name))


_register_flows()


# --- trust: the envelope --------------------------------------------------------------------------


@dataclass
class Env:
    """A deployment for the fuzzers: the example parties, keys in a temporary directory."""

    deployment: Any
    person_bsn: str = "999990019"

    @functools.cached_property
    def now(self) -> datetime:
        return datetime.now(UTC)

    def client(self, party: str) -> Any:
        return self.deployment.party_client(party)

    def state(self, full_validation: bool) -> Any:
        """A fresh router state (empty replay cache) with a consent for the example person."""
        from broker.policy import default_policy
        from broker.router.pipeline import ROUTER_DOMAIN

        state = self.deployment.router_state(default_policy())
        state.full_validation = full_validation
        for consent in _example_consents():
            state.consents.apply(
                state.pseudonyms.pseudonym(ROUTER_DOMAIN, consent.person_bsn), consent
            )
        return state


PARTIES = (
    ("zvh-voorbeeld", "ZVH", "zvh", "regio-voorbeeld"),
    ("aanbieder-voorbeeld", "provider", "coordinating-provider", "regio-voorbeeld"),
    ("aanbieder-b-voorbeeld", "provider B", "executing-provider", "regio-voorbeeld"),
    ("gemeente-voorbeeld", "municipality", "municipality", None),
    ("zorgverzekeraar-voorbeeld", "insurer", "health-insurer", None),
    ("vws", "VWS", "vws", None),
    ("landelijk-coordinatiepunt", "national coordination", "national-coordination", None),
    ("capaciteitsdashboard", "dashboard", "capacity-dashboard", None),
)


@functools.cache
def env() -> Env:
    from broker.apps.deployment import LocalParty, create_local
    from schemas.vocab import PartyRole

    state_dir = Path(tempfile.mkdtemp(prefix="ketenbus-fuzz-"))
    parties = [LocalParty(p, name, PartyRole(role), region) for p, name, role, region in PARTIES]
    return Env(create_local(state_dir, parties))


@functools.cache
def _example_consents() -> list[Any]:
    from schemas.flows.consent import consent_from_message
    from schemas.messaging import dumps, parse_message

    return [consent_from_message(parse_message(dumps(b))) for b in mutate.examples_of("consent")]


def _sender_of(bundle: Any) -> str:
    try:
        endpoint = bundle["entry"][0]["resource"]["source"]["endpoint"]
        party = str(endpoint).removeprefix(PARTY_ENDPOINT)
    except (KeyError, IndexError, TypeError):
        return "zvh-voorbeeld"
    return party if party in {p[0] for p in PARTIES} else "zvh-voorbeeld"


def seal_payload(raw: bytes, bundle: Any, *, now: datetime | None = None) -> Incoming:
    """Seal ``raw`` as the bundle's sender would (envelope fields from the bundle where it
    reads, so that the router gets past the envelope-mismatch check and deeper)."""
    from schemas.messaging import read_meta

    e = env()
    sender = _sender_of(bundle)
    try:
        meta = read_meta(bundle)
        message_id, event = meta.message_id, meta.event.value
    except MessageError:
        message_id, event = "fuzz-0000", "referral"
    client = e.client(sender)
    try:
        key, value, headers = client.seal_for_router(raw, event, message_id, now=now)
    except ValueError:  # an id the envelope cannot carry (control characters, too long)
        key, value, headers = client.seal_for_router(raw, "referral", "fuzz-0001", now=now)
    try:
        topic = topics.inbound_for(event).name
    except (KeyError, ValueError):  # e.g. a response: no inbound topic, the router still reads it
        topic = topics.IN_REFERRAL.name
    return Incoming(topic, key, value, headers)


@functools.cache
def router_seeds() -> list[Any]:
    """The example messages as their senders would send them through the router: without the
    router among the destinations (the examples name it, which the policy refuses)."""
    from schemas.messaging import party_reference

    out = []
    for bundle in _all_examples():
        b = copy.deepcopy(bundle)
        header_resource = b["entry"][0]["resource"]
        event = header_resource["eventCoding"]["code"]
        kept = []
        for d in header_resource.get("destination", []):
            if d.get("endpoint") != PARTY_ENDPOINT + "router":
                kept.append(d)
            elif event in _INSTEAD_OF_ROUTER:
                party = _INSTEAD_OF_ROUTER[event]
                kept.append(
                    {"endpoint": PARTY_ENDPOINT + party, "receiver": party_reference(party)}
                )
        if kept:
            header_resource["destination"] = kept
        else:
            header_resource.pop("destination", None)
        out.append(b)
    return out


_INSTEAD_OF_ROUTER = {
    "assessment-outcome": "zvh-voorbeeld",
    "care-transition": "zvh-voorbeeld",
    "claim": "zorgverzekeraar-voorbeeld",
    "claim-response": "aanbieder-voorbeeld",
}


@functools.cache
def sealed_examples() -> list[Incoming]:
    """Every example message sealed by its sender (a valid record for the router)."""
    from schemas.messaging import dumps

    return [seal_payload(dumps(b), b) for b in router_seeds()]


_HEADER_NAMES = st.sampled_from(
    ["content-type", "kb-id", "kb-event", "kb-sender", "kb-recipient", "kb-time", "kb-sig-kid",
     "kb-enc-kid", "kb-sig", "kb-sig-proof", "kb-other", "x-trace"]
)  # fmt: skip
_HEADER_VALUES = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.sampled_from(
        [b"", b"\xff\xfe", b"router", b"zvh-voorbeeld", b"application/vnd.ketenbus.sealed+v1",
         b"2026-01-01T00:00:00.000000Z", b"A" * 86 + b"==", b"kid", b"x" * 300,
         b'AAAAAAAAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==']
    ),
)  # fmt: skip


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> Incoming:
    """A valid sealed record with its key, headers and/or value altered."""
    rec = draw(st.sampled_from(sealed_examples()))
    headers = list(rec.headers)
    key, value = rec.key, rec.value
    for _ in range(draw(st.integers(1, 3))):
        part = draw(st.sampled_from(["header", "key", "value"]))
        if part == "key":
            key = draw(st.none() | st.binary(max_size=40) | st.just(b"\xff"))
        elif part == "value":
            value = draw(mutate.mutated_bytes(value) | st.binary(max_size=80))
        else:
            i = draw(st.integers(0, max(0, len(headers) - 1)))
            action = draw(st.sampled_from(["drop", "dup", "set", "rename", "add", "swap"]))
            if not headers or action == "add":
                headers.append((draw(_HEADER_NAMES), draw(_HEADER_VALUES)))
            elif action == "drop":
                del headers[i]
            elif action == "dup":
                headers.insert(i, headers[i])
            elif action == "set":
                headers[i] = (headers[i][0], draw(_HEADER_VALUES))
            elif action == "rename":
                headers[i] = (draw(_HEADER_NAMES), headers[i][1])
            else:
                j = draw(st.integers(0, len(headers) - 1))
                headers[i], headers[j] = headers[j], headers[i]
    return Incoming(rec.topic, key, value, headers)


@st.composite
def arbitrary_records(draw: st.DrawFn) -> Incoming:
    return Incoming(
        draw(st.sampled_from([t.name for t in topics.ROUTED])),
        draw(st.none() | st.binary(max_size=40)),
        draw(st.binary(max_size=200)),
        draw(st.lists(st.tuples(_HEADER_NAMES | st.text(max_size=8), _HEADER_VALUES), max_size=12)),
    )


def _envelopes() -> st.SearchStrategy[Incoming]:
    return st.one_of(mutated_envelopes(), arbitrary_records())


@target("trust.read_envelope", _envelopes)
def check_trust_read_envelope(rec: Incoming) -> None:
    from broker.trust import read_envelope

    try:
        read_envelope(rec.key, rec.headers)
    except TrustError as err:
        trust_refused(err)


@target("trust.open_sealed", _envelopes)
def check_trust_open_sealed(rec: Incoming) -> None:
    """Refused with a reason, or opened to exactly what was sealed (authenticity)."""
    from broker.trust import open_sealed

    e = env()
    router = e.deployment.keyring(e.deployment.router_id)
    try:
        opened = open_sealed(
            rec.key, rec.value, rec.headers, registry=e.deployment.registry, keyring=router
        )
    except TrustError as err:
        trust_refused(err)
        return
    originals = {
        (header(s.headers, "kb-id"), header(s.headers, "kb-sender")): s for s in sealed_examples()
    }
    source = originals[(opened.meta.message_id, opened.meta.sender)]
    original = open_sealed(
        source.key, source.value, source.headers, registry=e.deployment.registry, keyring=router
    )
    assert opened.payload == original.payload and opened.meta == original.meta


# --- the router -----------------------------------------------------------------------------------


@st.composite
def authentic_payloads(draw: st.DrawFn) -> Incoming:
    """Correctly sealed by a registered party, with mutated (or arbitrary) content."""
    seed = draw(st.sampled_from(router_seeds()))
    bundle = draw(mutate.mutated(seed)) if draw(st.booleans()) else seed
    raw = (
        mutate.dumps_any(bundle)
        if draw(st.integers(0, 4))
        else draw(mutate.mutated_bytes(mutate.dumps_any(seed)))
    )
    return seal_payload(raw, bundle)


def _router_inputs() -> st.SearchStrategy[tuple[Incoming, bool]]:
    records = st.one_of(authentic_payloads(), mutated_envelopes(), arbitrary_records())
    return st.tuples(records, st.booleans())


PARKING = {topics.REJECTED.name, topics.DEAD_LETTER.name}


@target("router.Pipeline.route", _router_inputs)
def check_route(case: tuple[Incoming, bool]) -> None:
    """Never raises; every input leaves facts; every refusal has a reason, a fact and a parked
    record carrying that reason; nothing new appears in clear in keys or headers."""
    from broker.router.pipeline import Pipeline

    rec, full_validation = case
    e = env()
    result = Pipeline(e.state(full_validation)).route(rec)
    assert result.facts, "an input left no fact"
    parked = {header(r.headers, "kb-reason") for r in result.records if r.topic in PARKING}
    for fact in result.facts:
        assert fact.reason, fact
        if fact.kind is FactKind.REFUSAL:
            assert fact.reason in parked, (fact.reason, parked)
        if fact.kind is FactKind.DENY:
            assert parked, "a denial without a parked record"
    registered = {topics.outbound(p).name for p in (*(p[0] for p in PARTIES), "router")}
    # and the router's own logs, sealed for itself: who got what, the escalation ladder
    own_logs = {topics.DELIVERIES.name, topics.ESCALATION.name}
    allowed = registered | PARKING | {topics.CONSENT.name} | own_logs
    clear_in = (rec.key or b"") + b"".join(str(k).encode() + (v or b"") for k, v in rec.headers)
    for out in result.records:
        assert out.topic in allowed, out.topic
        if out.topic in registered or out.topic in own_logs:
            assert header(out.headers, "kb-sig"), "a delivery that is not sealed"
        clear_out = (out.key or b"") + b"".join(k.encode() + (v or b"") for k, v in out.headers)
        bsn = e.person_bsn.encode()
        assert bsn not in clear_out or bsn in clear_in, "a BSN in clear in the output"


def replace_headers(rec: Incoming, headers: list[tuple[str, bytes]]) -> Incoming:
    return replace(rec, headers=headers)

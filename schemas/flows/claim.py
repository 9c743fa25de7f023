"""Claim (declaratie) and claim response (declaratie-antwoord) between financing regimes.

A claim names the service (registration phase, daily coordination, treatment, support), the
period, the quantity, the unit price and the amount (integer eurocents, never floats), the
financing regime and the payer (party id plus its UZOVI code, municipality code, or the OIN of
DJI or VWS). The payer answers with accepted, rejected (with a reason), paid or advanced (VWS under
the emergency rule).

FHIR claim: Claim (financial; the focus) with one ``item``; Coverage (financial) whose ``type`` is
the regime and whose ``payor`` is the payer; the payer's and the provider's Organization
(financial); Patient (identity: payers need the BSN). FHIR response: ClaimResponse (financial;
the focus) with the outcome in extension ``claim-outcome``; the payer's Organization; a Patient
with only the BSN (identity).

Money: FHIR ``Money.value`` is a decimal in euros. We write it from integer cents as the shortest
JSON number that reads back exactly and read it via its decimal text (``Src.cents``); a value with
more than two decimals is refused (``money-precision``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.errors import build_model, rule_error
from schemas.flows.common import (
    EPISODE_SYSTEM,
    Agb,
    Bsn,
    Cents,
    Code,
    FieldMap,
    IdValue,
    PartyId,
    Person,
    ShortText,
    Src,
    Text,
    bsn_patient,
    case_reference,
    code_in,
    concept,
    logical_reference,
    money,
    one,
    party_org_reference,
    patient_resource,
    person_from_patient,
    read_case,
    resolve,
)
from schemas.identifiers import (
    AGB_SYSTEM,
    MUNICIPALITY_SYSTEM,
    OIN_SYSTEM,
    PARTY_SYSTEM,
    UZOVI_SYSTEM,
    IdentifierError,
    validate_municipality,
    validate_oin,
    validate_uzovi,
)
from schemas.messaging import EXT, MessageMeta, ParsedMessage, build_message, full_url, new_id
from schemas.vocab import (
    ClaimOutcome,
    ClaimRejectionReason,
    ClaimService,
    DataCategory,
    FinancingRegime,
    PartyRole,
)

CLAIM_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/claim"
CLAIM_RESPONSE_SYSTEM = "https://ketenbus.nl/fhir/NamingSystem/claim-response"
EXT_EPISODE = EXT + "episode-of-care"
EXT_CLAIM_OUTCOME = EXT + "claim-outcome"
EXT_EXPLANATION = EXT + "financing-explanation"
CLAIM_TYPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/claim-type",
            "code": "institutional",
        }
    ]
}
PRIORITY_NORMAL = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}
    ]
}
ADJUDICATION_BENEFIT = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication", "code": "benefit"}]
}
PAYMENT_COMPLETE = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/ex-paymenttype", "code": "complete"}
    ]
}
MAX_QUANTITY = 100_000

# The payer roles, with the identifier system and check each one uses.
PAYER_IDENTIFIERS = {
    PartyRole.HEALTH_INSURER: (UZOVI_SYSTEM, validate_uzovi),
    PartyRole.CARE_OFFICE: (UZOVI_SYSTEM, validate_uzovi),
    PartyRole.MUNICIPALITY: (MUNICIPALITY_SYSTEM, validate_municipality),
    PartyRole.DJI: (OIN_SYSTEM, validate_oin),
    PartyRole.VWS: (OIN_SYSTEM, validate_oin),
}


AllocationNumber = Annotated[str, Field(pattern=r"^[0-9]{1,9}$")]
"""An iWmo ToewijzingNummer (LDT_Nummer: an integer of at most 9 digits)."""


class Payer(BaseModel):
    """Who pays: a ketenbus party, its role and its national identifier."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    party_id: PartyId = Field(description="The payer's party id.")
    role: PartyRole = Field(
        description="health-insurer, care-office (UZOVI), municipality (municipality code), "
        "dji or vws (OIN)."
    )
    identifier: str = Field(description="UZOVI code, municipality code or OIN, per the role.")

    @model_validator(mode="after")
    def _identifier(self) -> Payer:
        if self.role not in PAYER_IDENTIFIERS:
            raise rule_error("payer-role", "not a payer role", "role")
        _, check = PAYER_IDENTIFIERS[self.role]
        try:
            if check(self.identifier, "identifier") != self.identifier:
                raise IdentifierError("identifier", "must not have surrounding spaces")
        except IdentifierError as err:
            raise rule_error(err.reason, str(err), "identifier") from None
        return self

    @property
    def system(self) -> str:
        return PAYER_IDENTIFIERS[self.role][0]


class ExplanationInput(BaseModel):
    """One input a financing rule used, e.g. ``criminal-law-title`` = ``none``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", description="What the rule looked at (kebab-case)."
    )
    value: ShortText = Field(description="What it found.")


class ClaimExplanation(BaseModel):
    """Why this claim goes to this payer at this price: the financing rule, its version and the
    inputs it used (see ``adapters.financing``), so a payer or auditor can check the judgement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rule: Code = Field(description="Id of the financing rule applied.")
    version: Code = Field(description="Version of that rule.")
    inputs: tuple[ExplanationInput, ...] = Field(
        default=(), description="The inputs the rule used, in the order it used them."
    )
    text: Text | None = Field(default=None, description="The judgement in words.")


class Claim(BaseModel):
    """One claim for one service over one period."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claim_id: IdValue = Field(description="The provider's id of the claim.")
    provider: PartyId = Field(
        description="The claiming provider (coordinating or executing; no ZVH claims)."
    )
    provider_agb: Agb | None = Field(default=None, description="The claimant's AGB code.")
    created: date = Field(description="Date the claim was made.")
    person: Person = Field(description="The person the service was for (payers need the BSN).")
    service: ClaimService = Field(description="What is claimed.")
    period_start: date = Field(description="First day of the service period.")
    period_end: date = Field(description="Last day of the service period (inclusive).")
    quantity: int = Field(
        ge=1, le=MAX_QUANTITY, strict=True, description="Units: 1, or days for coordination."
    )
    unit_price_cents: Cents = Field(description="Price per unit in eurocents.")
    amount_cents: Cents = Field(description="Amount claimed in eurocents (quantity x price).")
    regime: FinancingRegime = Field(description="The financing regime that pays.")
    payer: Payer = Field(description="The payer.")
    zvh: PartyId | None = Field(
        default=None, description="ZVH of the case (required for the registration phase)."
    )
    referral_id: IdValue | None = Field(
        default=None, description="The ZVH case number (required for the registration phase)."
    )
    episode_id: IdValue | None = Field(
        default=None, description="The EpisodeOfCare (required for coordination days)."
    )
    explanation: ClaimExplanation | None = Field(
        default=None, description="The financing rule, version and inputs behind the claim."
    )
    allocation: AllocationNumber | None = Field(
        default=None,
        description=(
            "The payer's allocation the claim is for (iWmo WMO301 ToewijzingNummer; "
            "Claim.insurance.preAuthRef): a Wmo declaration cites it."
        ),
    )

    @model_validator(mode="after")
    def _rules(self) -> Claim:
        if self.period_end < self.period_start:
            raise rule_error("period", "period_end is before period_start", "period_end")
        if self.amount_cents != self.quantity * self.unit_price_cents:
            raise rule_error(
                "amount", "amount_cents must equal quantity x unit_price_cents", "amount_cents"
            )
        if (self.zvh is None) != (self.referral_id is None):
            raise rule_error("case", "zvh and referral_id go together", "referral_id")
        if self.service is ClaimService.REGISTRATION:
            if self.referral_id is None:
                raise rule_error("case", "the registration phase names its case", "referral_id")
            if self.quantity != 1:
                raise rule_error("quantity", "the registration phase is claimed once", "quantity")
        if self.service is ClaimService.COORDINATION_DAY:
            if self.episode_id is None:
                raise rule_error("episode", "coordination days name the episode", "episode_id")
            days = (self.period_end - self.period_start).days + 1
            if self.quantity != days:
                raise rule_error(
                    "quantity", "coordination days: quantity = days in the period", "quantity"
                )
        return self


class ClaimResponse(BaseModel):
    """A payer's answer to one claim."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    response_id: IdValue = Field(description="The payer's id of this response.")
    claim_id: IdValue = Field(description="The claim answered.")
    provider: PartyId = Field(description="The claimant.")
    payer: Payer = Field(description="The answering payer.")
    person_bsn: Bsn = Field(description="BSN of the person the claim was for.")
    decided_on: date = Field(description="Date of the answer.")
    outcome: ClaimOutcome = Field(description="accepted, rejected, paid or advanced.")
    approved_cents: Cents | None = Field(
        default=None, description="Approved amount (not for a rejection)."
    )
    paid_cents: Cents | None = Field(
        default=None, description="Amount paid (paid or advanced only)."
    )
    paid_on: date | None = Field(default=None, description="Payment date (paid or advanced).")
    rejection_reason: ClaimRejectionReason | None = Field(
        default=None, description="Why the claim is rejected (rejected only)."
    )
    rejection_note: Text | None = Field(default=None, description="Details of the rejection.")

    @model_validator(mode="after")
    def _rules(self) -> ClaimResponse:
        rejected = self.outcome is ClaimOutcome.REJECTED
        paid = self.outcome in (ClaimOutcome.PAID, ClaimOutcome.ADVANCED)
        if rejected and self.rejection_reason is None:
            raise rule_error("rejection", "a rejection gives its reason", "rejection_reason")
        if not rejected and (self.rejection_reason or self.rejection_note):
            raise rule_error(
                "rejection", "only a rejection has a rejection reason", "rejection_reason"
            )
        if self.rejection_note is not None and self.rejection_reason is None:
            raise rule_error("rejection", "a rejection note needs a reason", "rejection_reason")
        if rejected and self.approved_cents is not None:
            raise rule_error("approved", "a rejection approves no amount", "approved_cents")
        if not rejected and self.approved_cents is None:
            raise rule_error("approved", "give the approved amount", "approved_cents")
        if paid and (self.paid_cents is None or self.paid_on is None):
            raise rule_error("payment", "a payment gives its amount and date", "paid_cents")
        if not paid and (self.paid_cents is not None or self.paid_on is not None):
            raise rule_error("payment", "only paid or advanced has a payment", "paid_cents")
        return self


CLAIM_MAPPING = (
    FieldMap("claim_id", "Claim.identifier (…/NamingSystem/claim)", "financial"),
    FieldMap(
        "provider, provider_agb",
        "Claim.provider → Organization (identifier party id, AGB)",
        "financial",
    ),
    FieldMap("created", "Claim.created", "financial"),
    FieldMap("person", "Patient; Claim.patient, Coverage.beneficiary", "identity / contact"),
    FieldMap("service", "Claim.item[0].productOrService", "financial"),
    FieldMap(
        "period_start, period_end",
        "Claim.billablePeriod (= Claim.item[0].servicedPeriod)",
        "financial",
    ),
    FieldMap("quantity", "Claim.item[0].quantity.value", "financial"),
    FieldMap("unit_price_cents", "Claim.item[0].unitPrice (EUR)", "financial"),
    FieldMap("amount_cents", "Claim.total (EUR) (= Claim.item[0].net)", "financial"),
    FieldMap("regime", "Coverage.type", "financial"),
    FieldMap(
        "payer",
        "Organization (identifier party id + UZOVI / municipality code / OIN; type = role); "
        "Claim.insurer, Coverage.payor",
        "financial",
    ),
    FieldMap(
        "zvh, referral_id", "Claim.referral (ServiceRequest by …/zvh-case/<zvh>)", "financial"
    ),
    FieldMap("episode_id", "Claim.extension[episode-of-care].valueReference", "financial"),
    FieldMap(
        "allocation", "Claim.insurance.preAuthRef (one: the WMO301 ToewijzingNummer)", "financial"
    ),
    FieldMap(
        "explanation",
        "Claim.extension[financing-explanation]: sub-extensions rule, version (valueCode), "
        "input (valueString name=value, repeated), text (valueString)",
        "financial",
    ),
)

RESPONSE_MAPPING = (
    FieldMap(
        "response_id", "ClaimResponse.identifier (…/NamingSystem/claim-response)", "financial"
    ),
    FieldMap("claim_id", "ClaimResponse.request (Claim by …/NamingSystem/claim)", "financial"),
    FieldMap("provider", "ClaimResponse.requestor (Organization by party id)", "financial"),
    FieldMap("payer", "ClaimResponse.insurer → Organization", "financial"),
    FieldMap("person_bsn", "Patient (BSN only); ClaimResponse.patient", "identity"),
    FieldMap("decided_on", "ClaimResponse.created", "financial"),
    FieldMap(
        "outcome",
        "ClaimResponse.extension[claim-outcome].valueCoding; ClaimResponse.outcome "
        "(error for a rejection, else complete)",
        "financial",
    ),
    FieldMap("approved_cents", "ClaimResponse.total[benefit].amount", "financial"),
    FieldMap("paid_cents, paid_on", "ClaimResponse.payment.amount, .date", "financial"),
    FieldMap(
        "rejection_reason, rejection_note",
        "ClaimResponse.error[0].code (coding, text)",
        "financial",
    ),
)


def _payer_org(p: Payer) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": new_id(),
        "identifier": [
            {"system": PARTY_SYSTEM, "value": p.party_id},
            {"system": p.system, "value": p.identifier},
        ],
        "type": [concept(p.role)],
    }


def _read_payer(org: Src) -> Payer:
    role = code_in(org.single("type"), PartyRole)
    system = PAYER_IDENTIFIERS[role][0] if role in PAYER_IDENTIFIERS else None
    if system is None:
        raise org.error("type", "value", "not a payer role", "payer-role")
    party, _ = org.identifier(PARTY_SYSTEM)
    ident, ident_path = org.identifier(system)
    return build_model(
        Payer,
        {"party_id": party, "role": role, "identifier": ident},
        {"party_id": org.at("identifier"), "identifier": ident_path, "role": org.at("type")},
        org.path,
    )


def claim_entries(c: Claim) -> list[tuple[dict[str, Any], DataCategory]]:
    patient = patient_resource(c.person)
    patient["id"] = new_id()
    p_ref = {"reference": full_url(patient["id"])}
    payer = _payer_org(c.payer)
    provider: dict[str, Any] = {
        "resourceType": "Organization",
        "id": new_id(),
        "identifier": [
            {"system": PARTY_SYSTEM, "value": c.provider},
            *([{"system": AGB_SYSTEM, "value": c.provider_agb}] if c.provider_agb else []),
        ],
    }
    coverage: dict[str, Any] = {
        "resourceType": "Coverage",
        "id": new_id(),
        "status": "active",
        "type": concept(c.regime),
        "beneficiary": p_ref,
        "payor": [{"reference": full_url(payer["id"])}],
    }
    period = {"start": c.period_start.isoformat(), "end": c.period_end.isoformat()}
    claim: dict[str, Any] = {"resourceType": "Claim", "id": new_id()}
    extensions: list[dict[str, Any]] = []
    if c.episode_id is not None:
        extensions.append(
            {
                "url": EXT_EPISODE,
                "valueReference": logical_reference("EpisodeOfCare", EPISODE_SYSTEM, c.episode_id),
            }
        )
    if c.explanation is not None:
        extensions.append(_explanation_extension(c.explanation))
    if extensions:
        claim["extension"] = extensions
    claim |= {
        "identifier": [{"system": CLAIM_SYSTEM, "value": c.claim_id}],
        "status": "active",
        "type": CLAIM_TYPE,
        "use": "claim",
        "patient": p_ref,
        "billablePeriod": period,
        "created": c.created.isoformat(),
        "insurer": {"reference": full_url(payer["id"])},
        "provider": {"reference": full_url(provider["id"])},
        "priority": PRIORITY_NORMAL,
    }
    if c.zvh is not None and c.referral_id is not None:
        claim["referral"] = case_reference(c.zvh, c.referral_id)
    insurance: dict[str, Any] = {
        "sequence": 1,
        "focal": True,
        "coverage": {"reference": full_url(coverage["id"])},
    }
    if c.allocation is not None:
        insurance["preAuthRef"] = [c.allocation]
    claim |= {
        "insurance": [insurance],
        "item": [
            {
                "sequence": 1,
                "productOrService": concept(c.service),
                "servicedPeriod": period,
                "quantity": {"value": c.quantity},
                "unitPrice": money(c.unit_price_cents),
                "net": money(c.amount_cents),
            }
        ],
        "total": money(c.amount_cents),
    }
    return [
        (claim, DataCategory.FINANCIAL),
        (patient, DataCategory.IDENTITY),
        (coverage, DataCategory.FINANCIAL),
        (payer, DataCategory.FINANCIAL),
        (provider, DataCategory.FINANCIAL),
    ]


def _explanation_extension(e: ClaimExplanation) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [
        {"url": "rule", "valueCode": e.rule},
        {"url": "version", "valueCode": e.version},
        *({"url": "input", "valueString": f"{i.name}={i.value}"} for i in e.inputs),
    ]
    if e.text is not None:
        parts.append({"url": "text", "valueString": e.text})
    return {"url": EXT_EXPLANATION, "extension": parts}


def _read_explanation(ext: Src) -> ClaimExplanation:
    values: dict[str, list[Src]] = {"rule": [], "version": [], "input": [], "text": []}
    for part in ext.items("extension"):
        url = part.opt_string("url")
        if url not in values:
            raise part.error("url", "value", "not a financing-explanation part", "explanation")
        values[url].append(part)
    for key in ("rule", "version"):
        if len(values[key]) != 1:
            raise ext.error("extension", "invalid", f"needs exactly one {key}", "explanation")
    if len(values["text"]) > 1:
        raise ext.error("extension", "invalid", "at most one text", "explanation")
    inputs = []
    for part in values["input"]:
        name, sep, value = part.string("valueString").partition("=")
        if not sep:
            raise part.error("valueString", "value", "must be name=value", "explanation")
        inputs.append({"name": name, "value": value})
    return build_model(
        ClaimExplanation,
        {
            "rule": values["rule"][0].string("valueCode"),
            "version": values["version"][0].string("valueCode"),
            "inputs": tuple(inputs),
            "text": values["text"][0].string("valueString") if values["text"] else None,
        },
        {"rule": ext.at("extension"), "version": ext.at("extension")},
        ext.path,
    )


def claim_message(c: Claim, meta: MessageMeta) -> dict[str, Any]:
    """The claim as a FHIR message Bundle; the focus is the Claim."""
    return build_message(meta, claim_entries(c), focus=[0])


def claim_from_message(msg: ParsedMessage) -> Claim:
    """Read the claim back; needs the Claim, Patient, Coverage and both Organizations."""
    claim = one(msg, "Claim")
    patient = one(msg, "Patient")
    item = claim.single("item")
    insurance = claim.single("insurance")
    coverage = resolve(insurance.obj("coverage"), msg, "Coverage")
    pre_auth = insurance.data.get("preAuthRef")
    if pre_auth is not None and (
        not isinstance(pre_auth, list) or len(pre_auth) != 1 or not isinstance(pre_auth[0], str)
    ):
        raise insurance.error("preAuthRef", "value", "one allocation number", "allocation")
    payer_org = claim.resolve("insurer", msg, "Organization")
    if resolve(coverage.single("payor"), msg, "Organization").data is not payer_org.data:
        raise coverage.error("payor", "invariant", "must be the Claim.insurer", "payer")
    provider = claim.resolve("provider", msg, "Organization")
    provider_party, _ = provider.identifier(PARTY_SYSTEM)
    agb = provider.opt_identifier(AGB_SYSTEM)
    billable = claim.obj("billablePeriod")
    start, end = billable.date("start"), billable.date("end")
    served = item.obj("servicedPeriod")
    if (served.date("start"), served.date("end")) != (start, end):
        raise served.error(None, "invariant", "must equal Claim.billablePeriod", "period")
    amount = claim.cents("total")
    if item.cents("net") != amount:
        raise item.error("net", "invariant", "must equal Claim.total", "amount")
    episode = claim.extension(EXT_EPISODE)
    explained = claim.extension(EXT_EXPLANATION)
    referral = claim.opt_obj("referral")
    zvh, referral_id, case_path = read_case(referral) if referral else (None, None, "")
    return build_model(
        Claim,
        {
            "claim_id": claim.identifier(CLAIM_SYSTEM)[0],
            "provider": provider_party,
            "provider_agb": agb,
            "created": claim.date("created"),
            "person": person_from_patient(patient.data),
            "service": item.code("productOrService", ClaimService),
            "period_start": start,
            "period_end": end,
            "quantity": item.obj("quantity").integer("value"),
            "unit_price_cents": item.cents("unitPrice"),
            "amount_cents": amount,
            "regime": coverage.code("type", FinancingRegime),
            "payer": _read_payer(payer_org),
            "zvh": zvh,
            "referral_id": referral_id,
            "episode_id": episode.logical("valueReference", EPISODE_SYSTEM) if episode else None,
            "explanation": _read_explanation(explained) if explained else None,
            "allocation": pre_auth[0] if pre_auth else None,
        },
        {
            "allocation": insurance.at("preAuthRef"),
            "claim_id": claim.at("identifier"),
            "provider": "Organization.identifier",
            "provider_agb": "Organization.identifier",
            "period_start": billable.at("start"),
            "period_end": billable.at("end"),
            "quantity": item.at("quantity.value"),
            "unit_price_cents": item.at("unitPrice.value"),
            "amount_cents": claim.at("total.value"),
            "referral_id": case_path or claim.at("referral"),
            "zvh": case_path or claim.at("referral"),
            "episode_id": claim.at("extension"),
            "explanation": claim.at("extension"),
        },
        "Claim",
    )


def claim_response_entries(r: ClaimResponse) -> list[tuple[dict[str, Any], DataCategory]]:
    patient = bsn_patient(r.person_bsn)
    patient["id"] = new_id()
    payer = _payer_org(r.payer)
    rejected = r.outcome is ClaimOutcome.REJECTED
    resp: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": new_id(),
        "extension": [{"url": EXT_CLAIM_OUTCOME, "valueCoding": r.outcome.coding()}],
        "identifier": [{"system": CLAIM_RESPONSE_SYSTEM, "value": r.response_id}],
        "status": "active",
        "type": CLAIM_TYPE,
        "use": "claim",
        "patient": {"reference": full_url(patient["id"])},
        "created": r.decided_on.isoformat(),
        "insurer": {"reference": full_url(payer["id"])},
        "requestor": party_org_reference(r.provider),
        "request": logical_reference("Claim", CLAIM_SYSTEM, r.claim_id),
        "outcome": "error" if rejected else "complete",
        "disposition": r.outcome.display,
    }
    if r.approved_cents is not None:
        resp["total"] = [{"category": ADJUDICATION_BENEFIT, "amount": money(r.approved_cents)}]
    if r.paid_cents is not None and r.paid_on is not None:
        resp["payment"] = {
            "type": PAYMENT_COMPLETE,
            "date": r.paid_on.isoformat(),
            "amount": money(r.paid_cents),
        }
    if r.rejection_reason is not None:
        resp["error"] = [{"code": concept(r.rejection_reason, r.rejection_note)}]
    return [
        (resp, DataCategory.FINANCIAL),
        (patient, DataCategory.IDENTITY),
        (payer, DataCategory.FINANCIAL),
    ]


def claim_response_message(r: ClaimResponse, meta: MessageMeta) -> dict[str, Any]:
    """The claim response as a FHIR message Bundle; the focus is the ClaimResponse."""
    return build_message(meta, claim_response_entries(r), focus=[0])


def claim_response_from_message(msg: ParsedMessage) -> ClaimResponse:
    """Read the claim response back; needs the ClaimResponse, its payer Organization and the
    Patient (BSN)."""
    resp = one(msg, "ClaimResponse")
    bsn, bsn_path = one(msg, "Patient").bsn()
    outcome_ext = resp.req_extension(EXT_CLAIM_OUTCOME)
    outcome = outcome_ext.coding("valueCoding", ClaimOutcome)
    if resp.string("outcome") != ("error" if outcome is ClaimOutcome.REJECTED else "complete"):
        raise resp.error("outcome", "invariant", "must be error exactly for a rejection", "outcome")
    total = resp.opt_single("total")
    payment = resp.opt_obj("payment")
    error = resp.opt_single("error")
    error_cc = error.obj("code") if error else None
    return build_model(
        ClaimResponse,
        {
            "response_id": resp.identifier(CLAIM_RESPONSE_SYSTEM)[0],
            "claim_id": resp.logical("request", CLAIM_SYSTEM),
            "provider": resp.party("requestor"),
            "payer": _read_payer(resp.resolve("insurer", msg, "Organization")),
            "person_bsn": bsn,
            "decided_on": resp.date("created"),
            "outcome": outcome,
            "approved_cents": total.cents("amount") if total else None,
            "paid_cents": payment.cents("amount") if payment else None,
            "paid_on": payment.date("date") if payment else None,
            "rejection_reason": code_in(error_cc, ClaimRejectionReason) if error_cc else None,
            "rejection_note": error_cc.opt_string("text") if error_cc else None,
        },
        {
            "response_id": resp.at("identifier"),
            "claim_id": resp.at("request"),
            "provider": resp.at("requestor"),
            "person_bsn": bsn_path,
            "outcome": outcome_ext.at("valueCoding"),
            "approved_cents": resp.at("total"),
            "paid_cents": resp.at("payment"),
            "paid_on": resp.at("payment"),
            "rejection_reason": resp.at("error"),
            "rejection_note": resp.at("error[0].code.text"),
        },
        "ClaimResponse",
    )

"""Financing rules as data: load ``rules.yaml`` and judge one service on one date.

The rules change over time, so they are data with validity periods (inclusive dates) and a
version, and a claim is always judged by the rule in force on its service date. For that date
:meth:`RuleSet.decide` returns either a :class:`Ruling` (rule, version, regime, payer, price,
legal basis and the inputs it used) or a :class:`Gap` (no rule, or no payer) -- never an
invented tariff. Order of judgement:

1. the one rule of the service in force on the date, else a gap ``no-rule`` (with the note of a
   documented gap when one covers the date);
2. the rule's payer options, in order: the first whose condition holds pays;
3. none holds (the regime is unclear): the VWS emergency rule when it is in force on the date
   and names the service, else a gap ``no-payer``.

Every ruling and gap cites its rule *and* its source (document and section, ``cite`` in the
file), so a claim or escalation can be checked against the letter it rests on. Dates are Dutch
calendar dates: :func:`dutch_date` turns an instant into the date in Europe/Amsterdam.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.vocab import (
    ClaimRejectionReason,
    ClaimService,
    FinancingRegime,
    LegalBasis,
    LegalTitleKind,
    PartyRole,
)

DEFAULT_RULES = Path(__file__).with_name("rules.yaml")
DUTCH_TIME = ZoneInfo("Europe/Amsterdam")


def dutch_date(moment: datetime) -> date:
    """The Dutch calendar date of an instant: the chain's dates (service, claim, decision) are
    dates in Europe/Amsterdam, so a claim made at 00:30 Dutch time (22:30 or 23:30 UTC the day
    before) is dated that Dutch day. A naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        from datetime import UTC

        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(DUTCH_TIME).date()


class Condition(StrEnum):
    """What a payer option looks at; each is a fact about the person on the service date."""

    CRIMINAL_LAW_TITLE = "criminal-law-title"  # a criminal-law title in force on the date
    WLZ_INDICATION = "wlz-indication"  # a Wlz indication (the care office is known)
    HEALTH_INSURER = "health-insurer"  # the person's health insurer (UZOVI) is known
    MUNICIPALITY = "municipality"  # a municipality of residence (see residence policy)
    MUNICIPAL_PLACEMENT = "municipal-placement"  # placed for (in the care of) a municipality
    ALWAYS = "always"


class PayTarget(StrEnum):
    """Who pays when an option's condition holds: every payer the sources name."""

    MUNICIPALITY = "municipality"  # gemeente of residence (Wmo)
    HEALTH_INSURER = "health-insurer"  # zorgverzekeraar (Zvw)
    CARE_OFFICE = "care-office"  # zorgkantoor (Wlz)
    DJI = "dji"  # Dienst Justitiële Inrichtingen (forensic care; also for the gemeenten)
    VWS = "vws"  # ministry of VWS (emergency rule)
    JENV = "jenv"  # ministry of JenV; DJI is its agency and receives its claims
    MINISTRIES = "ministries"  # VWS and JenV together (temporary arrangement 2022-2023)


# The ketenbus party role that receives a target's claims. JenV has no party of its own: DJI is
# its executive agency (agentschap); the ministries jointly are reached through VWS, under whose
# direction ("onder regie van het ministerie van VWS") the arrangement runs (seed 002, 2.5).
TARGET_ROLE = {
    PayTarget.MUNICIPALITY: PartyRole.MUNICIPALITY,
    PayTarget.HEALTH_INSURER: PartyRole.HEALTH_INSURER,
    PayTarget.CARE_OFFICE: PartyRole.CARE_OFFICE,
    PayTarget.DJI: PartyRole.DJI,
    PayTarget.VWS: PartyRole.VWS,
    PayTarget.JENV: PartyRole.DJI,
    PayTarget.MINISTRIES: PartyRole.VWS,
}
TARGET_REGIMES: dict[PayTarget, frozenset[FinancingRegime]] = {
    PayTarget.MUNICIPALITY: frozenset({FinancingRegime.WMO}),
    PayTarget.HEALTH_INSURER: frozenset({FinancingRegime.ZVW}),
    PayTarget.CARE_OFFICE: frozenset({FinancingRegime.WLZ}),
    PayTarget.DJI: frozenset({FinancingRegime.JUSTICE}),
    PayTarget.VWS: frozenset({FinancingRegime.VWS_EMERGENCY, FinancingRegime.MINISTRIES}),
    PayTarget.JENV: frozenset({FinancingRegime.JUSTICE, FinancingRegime.MINISTRIES}),
    PayTarget.MINISTRIES: frozenset({FinancingRegime.MINISTRIES}),
}
# Targets a claim names by role alone (no municipality code or UZOVI).
NATIONAL_TARGETS = frozenset({PayTarget.DJI, PayTarget.VWS, PayTarget.JENV, PayTarget.MINISTRIES})


class RulesError(ValueError):
    """The rules file breaks a rule of the format; the message names the entry and the field."""


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Version = Annotated[str, Field(pattern=r"^[A-Za-z0-9.\-]{1,16}$")]
RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]


class SourceRef(_Data):
    """Where a rule comes from: the document and its section (and the sentence, when short)."""

    document: str = Field(min_length=1)
    section: str = Field(min_length=1)
    quote: str | None = None

    def label(self) -> str:
        return f"{self.document}, section {self.section}"


class PayerOption(_Data):
    """One line of a rule's payer list: when ``when`` holds, ``pay`` pays under ``regime``."""

    when: Condition
    pay: PayTarget
    regime: FinancingRegime
    basis: LegalBasis
    citation: str = Field(min_length=1)
    note: str | None = None

    @model_validator(mode="after")
    def _fits(self) -> PayerOption:
        if self.regime not in TARGET_REGIMES[self.pay]:
            allowed = ", ".join(sorted(r.value for r in TARGET_REGIMES[self.pay]))
            raise ValueError(f"{self.pay} pays under {allowed}, not {self.regime}")
        if self.basis not in (LegalBasis.LEGAL_OBLIGATION, LegalBasis.PUBLIC_TASK):
            raise ValueError("a claim travels on legal-obligation or public-task")
        return self


class Period(_Data):
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.valid_from and self.valid_until and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        return self

    def covers(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )

    def overlaps(self, other: Period) -> bool:
        lo = max(self.valid_from or date.min, other.valid_from or date.min)
        hi = min(self.valid_until or date.max, other.valid_until or date.max)
        return lo <= hi

    def label(self) -> str:
        start = self.valid_from.isoformat() if self.valid_from else "…"
        end = self.valid_until.isoformat() if self.valid_until else "…"
        return f"{start}..{end}"


class Recalibration(_Data):
    """A date on which the sources foresee a new amount; the rule runs on until one is given."""

    review_on: date
    note: str = Field(min_length=1)


class Rule(Period):
    """One financing rule of one service, with its validity period and version."""

    id: RuleId
    version: Version
    service: ClaimService
    valid_from: date
    price_cents: int | None = Field(default=None, ge=0, strict=True)
    unit: str = Field(min_length=1)
    payers: tuple[PayerOption, ...] = Field(min_length=1)
    cite: SourceRef
    source: str = Field(min_length=1)
    recalibration: Recalibration | None = None

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"


class KnownGap(Period):
    """A period the seeds leave open for a service; its note travels with the escalation."""

    service: ClaimService
    note: str = Field(min_length=1)
    cite: SourceRef


class Emergency(Period):
    """The VWS emergency rule: an unclear regime is billed to VWS, which advances after N days."""

    id: RuleId
    version: Version
    valid_from: date
    valid_until: date
    regime: Literal[FinancingRegime.VWS_EMERGENCY]
    basis: LegalBasis
    citation: str = Field(min_length=1)
    advance_after_days: int = Field(ge=1, strict=True)
    services: frozenset[ClaimService] = Field(min_length=1)
    refusals: frozenset[ClaimRejectionReason] = frozenset()
    cite: SourceRef
    source: str = Field(min_length=1)

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    def services_label(self) -> str:
        return ", ".join(sorted(s.value for s in self.services))

    def applies(self, service: ClaimService, day: date) -> bool:
        """Whether the rule takes ``service`` delivered on ``day``."""
        return service in self.services and self.covers(day)


class Residence(_Data):
    homeless_without_municipality: Literal["zvh-central-municipality", "none"]


class Watchdog(_Data):
    overdue_after_days: int = Field(ge=1, strict=True)
    cite: SourceRef


class Holds(_Data):
    """How long a claim may wait for a precondition before it is escalated."""

    allocation_escalate_after_days: int = Field(ge=1, strict=True)
    wlz_escalate_after_days: int = Field(ge=1, strict=True)
    cite: SourceRef


# gds: the GDS801 of the Zorgprestatiemodel, which carries ZPM prestaties only (codelist 071)
ProductFormat = Literal["iwmo", "iwlz", "vektis", "gds"]


class Product(_Data):
    """A product code *agreed* with a payer (no national code exists for these services)."""

    format: ProductFormat
    payer: Annotated[str, Field(pattern=r"^(any|[0-9]{4})$")]
    service: ClaimService
    category: Annotated[str, Field(pattern=r"^(0[1-9]|1[0-8])$")] | None = None  # iWmo WJ757
    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,6}$")]
    unit: Literal["01", "04", "14", "16", "82", "83", "84"] | None = None  # iWmo Eenheid
    # gds: the Vektis prestatiecodelijst (COD367); a GDS801 takes 071 (NZa ZPM) only
    codelist: Annotated[str, Field(pattern=r"^[0-9]{3}$")] | None = None

    @model_validator(mode="after")
    def _iwmo(self) -> Product:
        if self.format == "iwmo" and (self.category is None or self.unit is None):
            raise ValueError("an iwmo product needs category (01-18) and unit")
        if self.format != "vektis" and self.format != "gds" and len(self.code) > 5:
            raise ValueError("an iwmo or iwlz product code has at most 5 characters")
        if (self.format == "gds") != (self.codelist is not None):
            raise ValueError("a gds product, and only a gds product, names its codelist")
        return self


class RulesDocument(_Data):
    version: Literal[1]
    residence: Residence
    emergency: Emergency
    watchdog: Watchdog
    holds: Holds
    rules: tuple[Rule, ...] = Field(min_length=1)
    gaps: tuple[KnownGap, ...] = ()
    products: tuple[Product, ...] = ()


# --- facts and outcomes -------------------------------------------------------------------------


@dataclass(frozen=True)
class TitlePeriod:
    """A legal title with its (inclusive) period; ``end`` None is open."""

    kind: LegalTitleKind
    start: date
    end: date | None = None

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Facts:
    """What the rules may look at about one person; every field is optional."""

    municipality: str | None = None
    homeless: bool = False
    zvh: str | None = None  # the ZVH that registered the case
    zvh_municipality: str | None = None  # that ZVH's central municipality (homeless fallback)
    titles: tuple[TitlePeriod, ...] = ()
    health_insurer: str | None = None  # UZOVI
    care_office: str | None = None  # zorgkantoor code, when the person has a Wlz indication
    municipal_placement: str | None = None  # municipality that placed the person (code)


@dataclass(frozen=True)
class Ruling:
    """Who pays for a service on a date, at what price, by which rule and on which inputs."""

    service: ClaimService
    rule: str
    version: str
    regime: FinancingRegime
    payer_role: PartyRole
    payer_identifier: str | None  # municipality code or UZOVI; None for DJI and VWS
    price_cents: int | None  # None: the claimant's agreed price
    basis: LegalBasis
    citation: str
    inputs: tuple[tuple[str, str], ...]
    text: str
    option: int  # index of the payer option; -1 for the emergency rule
    target: PayTarget = PayTarget.VWS
    source: str = ""  # the source document and section of the rule

    @property
    def key(self) -> tuple[Any, ...]:
        """Days with equal keys are claimed together."""
        return (
            self.rule,
            self.version,
            self.option,
            self.regime,
            self.payer_role,
            self.payer_identifier,
            self.price_cents,
        )


@dataclass(frozen=True)
class Gap:
    """No rule or no payer for a service on a date: raised, never priced."""

    service: ClaimService
    reason: Literal["no-rule", "no-payer"]
    text: str
    inputs: tuple[tuple[str, str], ...] = field(default=())
    source: str = ""  # the source (document, section) of the gap or of the rule without payer

    @property
    def key(self) -> tuple[Any, ...]:
        return ("gap", self.service, self.reason, self.text)


Outcome = Ruling | Gap


def _cents(value: int) -> str:
    return f"EUR {value // 100:,}.{value % 100:02d}"


class RuleSet:
    """The loaded rules; immutable."""

    def __init__(self, doc: RulesDocument, source: str = "rules") -> None:
        self.doc = doc
        self.source = source
        self._check()

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.doc.rules

    @property
    def emergency(self) -> Emergency:
        return self.doc.emergency

    @property
    def overdue_after_days(self) -> int:
        return self.doc.watchdog.overdue_after_days

    @property
    def holds(self) -> Holds:
        return self.doc.holds

    def product(self, fmt: ProductFormat, service: ClaimService, payer: str | None) -> Product:
        """The agreed product of ``service`` for ``payer`` in ``fmt`` (its own entry first, else
        the ``any`` one); ``RulesError`` when the file has none."""
        found = [p for p in self.doc.products if p.format == fmt and p.service is service]
        own = [p for p in found if p.payer == payer]
        any_ = [p for p in found if p.payer == "any"]
        if own or any_:
            return (own or any_)[0]
        raise RulesError(f"{self.source}: no {fmt} product agreed for {service}")

    def _check(self) -> None:
        seen: set[str] = set()
        for i, r in enumerate(self.rules):
            if r.ref in seen:
                raise RulesError(f"{self.source}: rules[{i}] {r.ref} appears twice")
            seen.add(r.ref)
            for j, other in enumerate(self.rules[:i]):
                if other.service is r.service and other.overlaps(r):
                    raise RulesError(
                        f"{self.source}: rules[{i}] {r.ref} overlaps rules[{j}] {other.ref} "
                        f"for {r.service} ({r.label()} and {other.label()})"
                    )
        for i, g in enumerate(self.doc.gaps):
            for r in self.rules:
                if r.service is g.service and r.overlaps(g):
                    raise RulesError(
                        f"{self.source}: gaps[{i}] ({g.service} {g.label()}) overlaps rule {r.ref}"
                    )

    def rule_for(self, service: ClaimService, day: date) -> Rule | None:
        for r in self.rules:
            if r.service is service and r.covers(day):
                return r
        return None

    def known_gap(self, service: ClaimService, day: date) -> KnownGap | None:
        return next((g for g in self.doc.gaps if g.service is service and g.covers(day)), None)

    # --- the judgement ------------------------------------------------------------------------

    def _municipality(self, facts: Facts) -> tuple[str | None, str]:
        if facts.municipality:
            return facts.municipality, facts.municipality
        if (
            facts.homeless
            and self.doc.residence.homeless_without_municipality == "zvh-central-municipality"
            and facts.zvh_municipality
        ):
            return facts.zvh_municipality, (
                f"{facts.zvh_municipality} (homeless: central municipality of {facts.zvh})"
            )
        return None, "homeless, none" if facts.homeless else "none"

    def _holds(
        self, cond: Condition, day: date, facts: Facts
    ) -> tuple[bool, tuple[str, str] | None, str | None]:
        """Whether ``cond`` holds, the input it read, and the payer identifier it yields."""
        if cond is Condition.ALWAYS:
            return True, None, None
        if cond is Condition.CRIMINAL_LAW_TITLE:
            title = next(
                (t for t in facts.titles if t.kind is LegalTitleKind.CRIMINAL and t.covers(day)),
                None,
            )
            # "in force", never since when: the claim's explanation goes to the payer, whose
            # role gets identity and financial data only, not the legal title's detail
            # (policy: claim to dji; issue 16 §4). That a title holds on the day decides the
            # regime, and the regime is financial.
            value = "none" if title is None else "in force"
            return title is not None, ("criminal-law-title", value), None
        if cond is Condition.WLZ_INDICATION:
            value = facts.care_office or "none"
            return facts.care_office is not None, ("wlz-care-office", value), facts.care_office
        if cond is Condition.HEALTH_INSURER:
            value = facts.health_insurer or "unknown"
            return facts.health_insurer is not None, ("health-insurer", value), facts.health_insurer
        if cond is Condition.MUNICIPAL_PLACEMENT:
            placed = facts.municipal_placement
            return placed is not None, ("municipal-placement", placed or "none"), None
        code, shown = self._municipality(facts)
        return code is not None, ("municipality", shown), code

    def decide(self, service: ClaimService, day: date, facts: Facts) -> Outcome:
        """Judge ``service`` delivered on ``day`` for a person with ``facts``."""
        rule = self.rule_for(service, day)
        if rule is None:
            known = self.known_gap(service, day)
            why = known.note if known else "no financing rule covers this date"
            source = known.cite.label() if known else ""
            return Gap(
                service,
                "no-rule",
                f"no rule for {service}: {' '.join(why.split())}"
                + (f" [source: {source}]" if source else ""),
                source=source,
            )
        source = rule.cite.label()
        inputs: list[tuple[str, str]] = []
        for index, opt in enumerate(rule.payers):
            holds, read, identifier = self._holds(opt.when, day, facts)
            if read is not None:
                inputs.append(read)
            if not holds:
                continue
            price = "no fixed price" if rule.price_cents is None else _cents(rule.price_cents)
            why = "; ".join(f"{k} {v}" for k, v in inputs) + ": " if inputs else ""
            text = (
                f"{rule.ref}: {service} at {price} ({' '.join(rule.unit.split())}); "
                f"{why}{opt.pay} pays under {opt.regime} ({opt.citation})"
                + (f" ({' '.join(opt.note.split())})" if opt.note else "")
                + f" [source: {source}]"
            )
            return Ruling(
                service=service,
                rule=rule.id,
                version=rule.version,
                regime=opt.regime,
                payer_role=TARGET_ROLE[opt.pay],
                payer_identifier=None if opt.pay in NATIONAL_TARGETS else identifier,
                price_cents=rule.price_cents,
                basis=opt.basis,
                citation=opt.citation,
                inputs=tuple(inputs),
                text=text,
                option=index,
                target=opt.pay,
                source=source,
            )
        em = self.emergency
        inputs.insert(0, ("service-rule", rule.ref))
        if em.applies(service, day):
            return self.emergency_ruling(service, rule.price_cents, tuple(inputs), rule.ref)
        return Gap(
            service,
            "no-payer",
            f"{rule.ref}: {service}: none of its payers applies "
            f"({'; '.join(f'{k} {v}' for k, v in inputs[1:])}) and the emergency rule "
            f"{em.ref} does not apply ({em.label()}, for {em.services_label()}) "
            f"[source: {source}; "
            f"{em.cite.label()}]",
            tuple(inputs),
            source=source,
        )

    def emergency_ruling(
        self,
        service: ClaimService,
        price_cents: int | None,
        inputs: tuple[tuple[str, str], ...],
        why: str,
    ) -> Ruling:
        """The VWS emergency rule's ruling: the regime is unclear (``why``), VWS is billed."""
        em = self.emergency
        source = em.cite.label()
        return Ruling(
            service=service,
            rule=em.id,
            version=em.version,
            regime=FinancingRegime.VWS_EMERGENCY,
            payer_role=PartyRole.VWS,
            payer_identifier=None,
            price_cents=price_cents,
            basis=em.basis,
            citation=em.citation,
            inputs=inputs,
            text=(
                f"{em.ref}: {service}: no payer of {why} applies (regime unclear), so VWS is "
                f"billed and the bestuurlijk adviseur addresses the payer; VWS advances it "
                f"when it stays unpaid for more than {em.advance_after_days} days "
                f"[source: {source}]"
            ),
            option=-1,
            target=PayTarget.VWS,
            source=source,
        )


def parse_rules(data: Any, source: str = "rules") -> RuleSet:
    """Validate a decoded rules document; ``RulesError`` names every problem."""
    try:
        doc = RulesDocument.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in err.errors()
        )
        raise RulesError(f"{source}: {problems}") from None
    return RuleSet(doc, source)


def load_rules(path: Path = DEFAULT_RULES) -> RuleSet:
    """Load a rules file (the shipped ``rules.yaml`` by default)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise RulesError(f"{path}: {err}") from None
    return parse_rules(data, str(path))


_default: RuleSet | None = None


def default_rules() -> RuleSet:
    """The shipped rules, loaded once."""
    global _default
    if _default is None:
        _default = load_rules()
    return _default

"""The grounds of one disclosure, derived deterministically from the wire (issue 16).

A message names one ``LegalBasis`` code (``Bundle.meta.security``) and optionally a
``BasisDetail``. :func:`grounds_of` maps them onto the law's separate questions (the table is in
``docs/policy.md`` and a test holds the code to it):

=================== ========== ============================================ ===================
wire code           AVG 6(1)   art. 9/10 exception (unless stated)          secrecy ground
=================== ========== ============================================ ===================
consent             (a)        art9-2a, art10-uavg-32 (explicit consent)    consent
legal-obligation    (c)        those the cited provision carries            legal-duty
public-task         (e)        those the cited provision carries            none
conflict-of-duties  (d)        art9-2c, art10-uavg-32 (vital interest)      conflict-of-duties
=================== ========== ============================================ ===================

Consent and a vital interest are grounds for criminal data too: UAVG art. 32(a) (explicit
consent) and art. 32(b) (vital interest, the person unable to consent) mirror art. 22(2)(a)/(b)
for health data, so police facts (Wpg) reach a ZVH partner on the same footing.

Exceptions stated in the message (``legal-basis-exception``) replace the derived ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.messaging import BasisDetail
from schemas.vocab import LegalBasis
from schemas.vocab.citations import Citation, resolve_citation
from schemas.vocab.grounds import GdprBasis, SecrecyGround, SpecialException

_GDPR = {
    LegalBasis.CONSENT: GdprBasis.CONSENT,
    LegalBasis.LEGAL_OBLIGATION: GdprBasis.LEGAL_OBLIGATION,
    LegalBasis.PUBLIC_TASK: GdprBasis.PUBLIC_TASK,
    LegalBasis.CONFLICT_OF_DUTIES: GdprBasis.VITAL_INTEREST,
}
_SECRECY = {
    LegalBasis.CONSENT: SecrecyGround.CONSENT,
    LegalBasis.LEGAL_OBLIGATION: SecrecyGround.LEGAL_DUTY,
    LegalBasis.PUBLIC_TASK: SecrecyGround.NONE,
    LegalBasis.CONFLICT_OF_DUTIES: SecrecyGround.CONFLICT_OF_DUTIES,
}
_EXCEPTIONS: dict[LegalBasis, tuple[SpecialException, ...]] = {
    LegalBasis.CONSENT: (SpecialException.EXPLICIT_CONSENT, SpecialException.CRIMINAL_GENERAL),
    LegalBasis.CONFLICT_OF_DUTIES: (
        SpecialException.VITAL_INTEREST,
        SpecialException.CRIMINAL_GENERAL,
    ),
}


@dataclass(frozen=True, slots=True)
class Grounds:
    """The grounds of one disclosure: AVG art. 6 basis, art. 9/10 exceptions, secrecy ground,
    and the listed provision cited (None when none was cited or it is not on the list)."""

    gdpr_basis: GdprBasis
    exceptions: tuple[SpecialException, ...]
    secrecy: SecrecyGround
    citation: Citation | None = None

    @property
    def article9(self) -> tuple[SpecialException, ...]:
        return tuple(e for e in self.exceptions if not e.article10)

    @property
    def article10(self) -> tuple[SpecialException, ...]:
        return tuple(e for e in self.exceptions if e.article10)


def grounds_of(basis: LegalBasis, detail: BasisDetail | None) -> Grounds:
    """The grounds a message's basis code and detail stand for (see the module table)."""
    cited = resolve_citation(detail.citation) if detail and detail.citation else None
    if detail is not None and detail.exceptions:
        exceptions = detail.exceptions
    elif basis in _EXCEPTIONS:
        exceptions = _EXCEPTIONS[basis]
    else:
        exceptions = cited.exceptions if cited is not None else ()
    return Grounds(_GDPR[basis], exceptions, _SECRECY[basis], cited)

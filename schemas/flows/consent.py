"""Consent: who consents, to which recipients or roles, for which purposes and data categories,
for which period; and its revocation (a newer version of the same consent with status inactive).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.identifiers import validate_bsn
from schemas.vocab import DataCategory, LegalBasis, PartyRole, PurposeOfUse


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"  # revoked


class Grantor(StrEnum):
    PERSON = "person"
    REPRESENTATIVE = "representative"


Bsn = Annotated[str, AfterValidator(validate_bsn)]


class ConsentRecord(BaseModel):
    """One version of a consent. ``consent_id`` is stable across versions; the version with the
    latest ``recorded_at`` wins, so a revocation is the same id with status ``inactive``."""

    model_config = ConfigDict(frozen=True)

    consent_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-\.]+$")
    person_bsn: Bsn
    status: ConsentStatus = ConsentStatus.ACTIVE
    grantor: Grantor = Grantor.PERSON
    representative_name: str | None = None
    recipients: tuple[str, ...] = ()
    recipient_roles: tuple[PartyRole, ...] = ()
    purposes: tuple[PurposeOfUse, ...] = Field(min_length=1)
    categories: tuple[DataCategory, ...] = Field(min_length=1)
    period_start: date
    period_end: date | None = None
    recorded_at: datetime
    recorded_by: str = Field(min_length=1, description="Party id that recorded the consent.")
    legal_basis: LegalBasis = LegalBasis.CONSENT

    @model_validator(mode="after")
    def _check(self) -> ConsentRecord:
        if not self.recipients and not self.recipient_roles:
            raise ValueError("a consent names at least one recipient or recipient role")
        if self.period_end is not None and self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        if self.grantor is Grantor.REPRESENTATIVE and not self.representative_name:
            raise ValueError("a representative's consent names the representative")
        if self.recorded_at.tzinfo is None:
            raise ValueError("recorded_at must carry a time zone")
        return self

    def in_force(self, on: date) -> bool:
        """Active and within its period on that date (expired consent does not count)."""
        if self.status is not ConsentStatus.ACTIVE:
            return False
        return self.period_start <= on and (self.period_end is None or on <= self.period_end)

    def covers(
        self,
        recipient: str,
        role: PartyRole,
        purpose: PurposeOfUse,
        categories: frozenset[DataCategory] | set[DataCategory],
    ) -> bool:
        """Whether this consent covers that recipient (by id or role), purpose and categories."""
        if recipient not in self.recipients and role not in self.recipient_roles:
            return False
        if purpose not in self.purposes:
            return False
        return set(categories) <= set(self.categories)

"""The grounds of a disclosure, as the law separates them (issue 16).

A disclosure of personal data needs, each on its own:

* a lawful basis under **AVG art. 6(1)** (:class:`GdprBasis`, the letter of the paragraph);
* for health data (special categories, AVG art. 9(1)) an **art. 9(2) exception**, and for
  criminal data an **art. 10** ground, each with the UAVG article that carries it in Dutch law
  (:class:`SpecialException`);
* where a care professional discloses what they learnt in confidence (Wgbo, BW art. 7:457), a
  **ground to break professional secrecy** (:class:`SecrecyGround`, KNMG "Wegwijzer
  beroepsgeheim"): consent, a legal duty, or a conflict of duties decided by a named
  professional. *Conflict van plichten* is not an AVG basis; it only lifts secrecy.

The old single list (:class:`schemas.vocab.LegalBasis`) stays on the wire and maps onto these
deterministically (``broker.policy.grounds``; the table is in ``docs/policy.md``).
"""

from enum import StrEnum, nonmember

from schemas.vocab.base import KETENBUS_CS, Coded
from schemas.vocab.categories import DataCategory
from schemas.vocab.roles import PartyRole


class GdprBasis(Coded):
    """AVG art. 6(1): the letter of the lawful basis. (b) contract and (f) legitimate interest
    are not grounds for the Levensloopaanpak's flows: (f) does not apply to public authorities
    in their tasks (art. 6(1), last sentence)."""

    SYSTEM = nonmember(KETENBUS_CS + "gdpr-basis")

    CONSENT = ("a", "Toestemming (AVG art. 6(1)(a))", "The person's consent.")
    LEGAL_OBLIGATION = (
        "c",
        "Wettelijke verplichting (AVG art. 6(1)(c))",
        "A legal obligation of the controller, cited from the closed list.",
    )
    VITAL_INTEREST = (
        "d",
        "Vitaal belang (AVG art. 6(1)(d))",
        "The vital interest of the person or of another natural person.",
    )
    PUBLIC_TASK = (
        "e",
        "Publieke taak (AVG art. 6(1)(e))",
        "A task in the public interest or in the exercise of official authority, cited.",
    )


class SpecialException(Coded):
    """The exception that lifts the ban of AVG art. 9(1) (health) or the art. 10 ground for
    criminal data, with the UAVG article that implements it."""

    SYSTEM = nonmember(KETENBUS_CS + "special-category-exception")

    EXPLICIT_CONSENT = (
        "art9-2a",
        "Uitdrukkelijke toestemming (AVG art. 9(2)(a), UAVG art. 22(2))",
        "The person's explicit consent for these data, this recipient and purpose.",
    )
    VITAL_INTEREST = (
        "art9-2c",
        "Vitaal belang, geen toestemming mogelijk (AVG art. 9(2)(c), UAVG art. 22(2))",
        "Vital interest of the person or another, where the person cannot give consent.",
    )
    CARE = (
        "art9-2h-uavg-30",
        "Zorg en maatschappelijke dienstverlening (AVG art. 9(2)(h), UAVG art. 30(3))",
        "Care providers and social-service bodies, for the care of the person, under a duty "
        "of secrecy.",
    )
    CRIMINAL_GENERAL = (
        "art10-uavg-32",
        "Strafrechtelijke gegevens, algemene uitzonderingen (AVG art. 10, UAVG art. 32)",
        "Criminal data on the general grounds of UAVG art. 32 (e.g. explicit consent).",
    )
    CRIMINAL_BODIES = (
        "art10-uavg-33",
        "Strafrechtelijke gegevens, bijzondere organen (AVG art. 10, UAVG art. 33)",
        "Criminal data processed by bodies the law charges with it (UAVG art. 33).",
    )

    @property
    def article10(self) -> bool:
        """Whether this is a ground for criminal data (art. 10) rather than an art. 9 exception."""
        return self.value.startswith("art10")


class SecrecyGround(Coded):
    """The ground on which a care professional breaks professional secrecy (Wgbo, BW art. 7:457;
    KNMG Wegwijzer beroepsgeheim)."""

    SYSTEM = nonmember(KETENBUS_CS + "secrecy-ground")

    CONSENT = ("consent", "Toestemming", "The patient's consent (BW art. 7:457(1)).")
    LEGAL_DUTY = (
        "legal-duty",
        "Wettelijk voorschrift",
        "A statutory duty or provision, cited from the closed list (BW art. 7:457(1)).",
    )
    CONFLICT_OF_DUTIES = (
        "conflict-of-duties",
        "Conflict van plichten",
        "Decided per occasion by a named professional with a written justification, for a "
        "limited time (KNMG).",
    )
    NONE = ("none", "Geen", "No ground to break secrecy: a professional may not disclose.")


# Health data (AVG art. 4(15), 9(1)): what a care episode, a risk assessment, a Wvggz/Wzd title
# or clinical content reveals. Criminal data (art. 10): police and justice facts.
HEALTH_CATEGORIES = frozenset(
    {
        DataCategory.CLINICAL,
        DataCategory.RISK_ASSESSMENT,
        DataCategory.CARE_EPISODE,
        DataCategory.LEGAL_TITLE,
    }
)
CRIMINAL_CATEGORIES = frozenset({DataCategory.JUSTICE, DataCategory.POLICE_DATA})

# Roles whose staff are hulpverleners under the Wgbo and bound by BW art. 7:457.
SECRECY_BOUND_ROLES = frozenset({PartyRole.COORDINATING_PROVIDER, PartyRole.EXECUTING_PROVIDER})


class GroundsReason(StrEnum):
    """Stable reason codes of the grounds checks (``broker.policy.decision``)."""

    CITATION_NOT_LISTED = "citation-not-listed"
    LEGAL_TITLE_REFERENCE_MISSING = "legal-title-reference-missing"
    CONFLICT_OF_DUTIES_EXPIRED = "conflict-of-duties-expired"
    CONFLICT_OF_DUTIES_TOO_LONG = "conflict-of-duties-validity-too-long"
    SPECIAL_CATEGORY_EXCEPTION_MISSING = "special-category-exception-missing"
    SPECIAL_CATEGORY_EXCEPTION_NOT_ACCEPTED = "special-category-exception-not-accepted"
    CRIMINAL_DATA_GROUND_MISSING = "criminal-data-ground-missing"
    SECRECY_GROUND_MISSING = "secrecy-ground-missing"

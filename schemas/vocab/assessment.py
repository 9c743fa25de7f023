"""Codes of the assessment outcome (inclusiebesluit)."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class AssessmentDecision(Coded):
    """The provider's decision on a referral."""

    SYSTEM = nonmember(KETENBUS_CS + "assessment-outcome")

    INCLUDED = (
        "included",
        "Geïncludeerd",
        "All four inclusion criteria are met: the person is included in the Levensloopaanpak "
        "from the inclusion date (EpisodeOfCare.period.start) and followed for at least 2 years.",
    )
    NOT_INCLUDED = (
        "not-included",
        "Niet geïncludeerd",
        "The person is not included; the decision gives the reasons and the alternative "
        "(existing care or support) the provider advises.",
    )


class InclusionCriterion(Coded):
    """The four criteria for inclusion in the Levensloopaanpak; all must hold, for a person of
    18 or older on the decision date (implementation plan 2022, 2.1 Doelgroepomschrijving, seed
    002: "Personen (18+) die agressief en/of gevaarlijk gedrag (dreigen te) vertonen ..."; the age
    is checked by ``AssessmentOutcome``, reason ``age-of-majority``)."""

    SYSTEM = nonmember(KETENBUS_CS + "inclusion-criterion")

    DANGEROUS_BEHAVIOUR = (
        "dangerous-behaviour",
        "Gevaarlijk gedrag",
        "Dangerous behaviour towards others, or a high risk of it, established by a risk "
        "assessment (risicotaxatie), because of a psychiatric disorder, a (mild) intellectual "
        "disability and/or acquired brain injury.",
    )
    MULTI_PROBLEM = (
        "multi-problem",
        "Langdurige multiproblematiek",
        "Long-term, recurring, hard-to-manage multi-problems that existing support, care and "
        "guidance systems cannot contain.",
    )
    STRUCTURE_NEED = (
        "structure-need",
        "Behoefte aan structuur",
        "A need for structuring treatment, guidance and limits, preferably ambulant.",
    )
    LEGAL_TITLE = (
        "legal-title",
        "Juridische titel",
        "There is or was a legal title because of the dangerous behaviour: a court "
        "authorisation under the Wzd, a care authorisation under the Wvggz, or a criminal-law "
        "title.",
    )


class CriterionResult(Coded):
    """How one inclusion criterion was judged."""

    SYSTEM = nonmember(KETENBUS_CS + "criterion-result")

    MET = ("met", "Voldaan", "The criterion holds.")
    NOT_MET = ("not-met", "Niet voldaan", "The criterion does not hold.")
    NOT_ASSESSED = (
        "not-assessed",
        "Niet beoordeeld",
        "Not judged, e.g. because another criterion already failed; never for an inclusion.",
    )


class AdvisedAlternative(Coded):
    """The existing care or support a provider advises when a person is not included."""

    SYSTEM = nonmember(KETENBUS_CS + "advised-alternative")

    MENTAL_HEALTH = (
        "mental-health-care",
        "Reguliere ggz",
        "Regular (curative or long-term) mental-health care.",
    )
    DISABILITY_CARE = (
        "disability-care",
        "Gehandicaptenzorg",
        "Care for people with a (mild) intellectual disability.",
    )
    ADDICTION_CARE = ("addiction-care", "Verslavingszorg", "Addiction care.")
    FORENSIC_CARE = (
        "forensic-care",
        "Forensische zorg",
        "Forensic care under a criminal-law title, outside the Levensloopaanpak.",
    )
    SOCIAL_SUPPORT = (
        "social-support",
        "Wmo-ondersteuning",
        "Support by the municipality under the Wmo 2015 (housing, day activities, income).",
    )
    ZVH_CASE_WORK = (
        "zvh-case-work",
        "Persoonsgerichte aanpak ZVH",
        "Continued case work at the Zorg- en Veiligheidshuis (person-centred approach).",
    )
    NONE = ("none", "Geen", "No alternative is advised (none needed or none available).")
    OTHER = ("other", "Anders", "Another alternative, described in the note.")

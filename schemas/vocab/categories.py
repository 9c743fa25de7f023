"""Data categories: the unit of minimisation.

Every resource (or element group) in a message is tagged with one category in ``meta.security``;
a recipient gets only the categories its role allows.
"""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class DataCategory(Coded):
    """Data categories: the unit of minimisation; every content resource carries one."""

    SYSTEM = nonmember(KETENBUS_CS + "data-category")

    IDENTITY = ("identity", "Identity", "BSN, name, birth date, gender: who the person is.")
    CONTACT = ("contact", "Contact", "Address, telephone, residence municipality.")
    REFERRAL_SIGNAL = (
        "referral-signal",
        "Referral signal",
        "Why a person was registered: the signal and its source, without clinical detail.",
    )
    RISK_ASSESSMENT = (
        "risk-assessment",
        "Risk assessment",
        "Risicotaxatie: the assessed risk of dangerous behaviour and its grounds.",
    )
    LEGAL_TITLE = (
        "legal-title",
        "Legal title",
        "Wvggz care authorisation, Wzd court authorisation or criminal-law title, with period.",
    )
    JUSTICE = ("justice", "Justice data", "Criminal-law and police data (Wjsg/Wpg).")
    POLICE_DATA = (
        "police-data",
        "Police data",
        "Police facts (Wpg): incidents and registrations a police partner brings to the ZVH "
        "under Wpg art. 16/20 and the ZVH covenant; criminal data (AVG art. 10).",
    )
    CLINICAL = ("clinical", "Clinical", "Diagnoses, treatment content, clinical narrative.")
    CARE_EPISODE = (
        "care-episode",
        "Care episode",
        "Inclusion, care transitions, provider, location and security level, with dates.",
    )
    FINANCIAL = ("financial", "Financial", "Claims, amounts, periods, payer and regime.")
    PROCESS = (
        "process",
        "Process",
        "Workflow state of a case (Task status, procesregie) without personal detail.",
    )
    AGGREGATE = ("aggregate", "Aggregate", "Counts without any personal data (capacity).")

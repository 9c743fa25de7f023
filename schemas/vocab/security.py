"""Security levels of clinical beds (beveiligingsniveau)."""

from enum import nonmember

from schemas.vocab.base import KETENBUS_CS, Coded


class SecurityLevel(Coded):
    """Care setting and security level of a bed (beveiligingsniveau); tags Encounter/Location."""

    SYSTEM = nonmember(KETENBUS_CS + "security-level")

    AMBULANT = ("ambulant", "Ambulant (FACT)", "Ambulant care by a forensic FACT team.")
    LEVEL_2 = ("2", "Beveiligingsniveau 2", "Secure clinical bed, level 2.")
    LEVEL_3 = ("3", "Beveiligingsniveau 3", "Secure clinical bed, level 3.")
    LEVEL_4 = ("4", "Beveiligingsniveau 4", "Secure clinical bed, level 4 (highest).")

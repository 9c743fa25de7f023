"""A claim carries its financing explanation through FHIR and back; a malformed one is refused
with the path of the offending element."""

from __future__ import annotations

import json
from typing import Any

import pytest

from schemas.errors import MessageError
from schemas.flows.claim import EXT_EXPLANATION, claim_from_message, claim_message
from schemas.messaging import MessageMeta, dumps, parse_message
from schemas.vocab import EventCode, LegalBasis, PurposeOfUse
from tests.unit.adapters.payer_samples import COORDINATION_DJI


def bundle() -> dict[str, Any]:
    meta = MessageMeta.new(
        EventCode.CLAIM, "fivoor", PurposeOfUse.HPAYMT, LegalBasis.LEGAL_OBLIGATION
    )
    return claim_message(COORDINATION_DJI, meta)


def explanation(b: dict[str, Any]) -> dict[str, Any]:
    claim = next(e["resource"] for e in b["entry"] if e["resource"]["resourceType"] == "Claim")
    return next(x for x in claim["extension"] if x["url"] == EXT_EXPLANATION)


def test_round_trip_with_full_validation() -> None:
    read = claim_from_message(parse_message(dumps(bundle()), full=True))
    assert read == COORDINATION_DJI
    assert read.explanation is not None and read.explanation.rule.startswith("coordination")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda x: x["extension"].append({"url": "rule", "valueCode": "again"}),
            "exactly one rule",
        ),
        (lambda x: x["extension"][2].update(valueString="no equals sign"), "name=value"),
        (lambda x: x["extension"].append({"url": "mood", "valueString": "x"}), "not a financing"),
        (lambda x: x["extension"][2].update(valueString="Bad Name=x"), "pattern"),
    ],
)
def test_a_malformed_explanation_is_refused(change: Any, words: str) -> None:
    b = bundle()
    change(explanation(b))
    with pytest.raises(MessageError) as err:
        claim_from_message(parse_message(json.dumps(b), full=False))
    assert words in str(err.value)
    assert "Claim.extension" in err.value.issues[0].path

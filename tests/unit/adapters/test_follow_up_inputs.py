"""Corrections and withdrawals at the adapters (docs/flows/correction.md): the ZVH and provider
input formats, hostile input included, and the outbox status file that marks an original."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from adapters.common.outbox import Outbox
from adapters.provider.inputs import Submission, parse_json
from adapters.zvh.format import ZvhReferral, ZvhWithdrawal, parse_bytes, parse_document
from broker.apps.generate.examples import EXAMPLES_DIR, PROVIDER
from broker.apps.scenarios import demo
from schemas.errors import MessageError
from schemas.flows.withdrawal import DATA_OPERATION, NULLIFY, Withdrawal
from schemas.messaging import EXT_FOLLOW_UP_OF, URI_SYSTEM, new_id, parse_message

PERSON = {"bsn": "999990019", "family_name": "Voorbeeld", "birth_date": "1990-01-01"}


def _refused(data: Any) -> MessageError:
    with pytest.raises(MessageError) as err:
        parse_document(data)
    return err.value


def test_a_zvh_withdraws_by_message_id_and_corrects_a_referral_with_corrects() -> None:
    mid = new_id()
    doc = parse_document({"type": "withdrawal", "message_id": mid})
    assert isinstance(doc, ZvhWithdrawal) and doc.message_id == mid
    referral = demo.referral("CASE-1", "midden-nederland", PERSON, date.today())
    corrected = parse_document({**referral, "corrects": mid})
    assert isinstance(corrected, ZvhReferral) and corrected.corrects == mid
    batch = json.dumps([referral, {"type": "withdrawal", "message_id": mid}]).encode()
    [(_, a), (_, b)] = parse_bytes(batch)
    assert isinstance(a, ZvhReferral) and isinstance(b, ZvhWithdrawal)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"type": "withdrawal"}, "message_id"),
        ({"type": "withdrawal", "message_id": "../../outbox/x"}, "message_id"),
        ({"type": "withdrawal", "message_id": "999990019"}, "message_id"),  # a BSN, not an id
        ({"type": "withdrawal", "message_id": 42}, "message_id"),
        # no reason in words: free text could carry what the original should not have disclosed
        (
            {"type": "withdrawal", "message_id": new_id(), "reason": "wrong person"},
            "(unknown field)",  # and not named back (issue 20: never echo input)
        ),
    ],
)
def test_hostile_withdrawal_documents_are_refused_per_field(doc: dict[str, Any], path: str) -> None:
    err = _refused(doc)
    assert path in {i.path for i in err.issues}, err.issues


def test_a_correction_names_its_original_by_message_id_only() -> None:
    referral = demo.referral("CASE-1", "midden-nederland", PERSON, date.today())
    err = _refused({**referral, "corrects": "CASE-0"})
    assert "corrects" in {i.path for i in err.issues}


def _provenance(agent: str, target: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{target}"}}],
        "recorded": "2026-11-02T10:00:00Z",
        "activity": {"coding": [{"system": DATA_OPERATION, "code": NULLIFY}]},
        "agent": [{"who": {"identifier": {"system": "https://ketenbus.nl/fhir/NamingSystem/party",
                                          "value": agent}}}],
    }  # fmt: skip


def test_a_provider_withdraws_with_a_plain_provenance_of_its_own() -> None:
    mid = new_id()
    [(_, sub)] = parse_json(json.dumps(_provenance(PROVIDER, mid)).encode(), PROVIDER)
    assert isinstance(sub, Submission) and isinstance(sub.model, Withdrawal)
    assert sub.model.original_id == mid
    [(_, other)] = parse_json(json.dumps(_provenance("someone-else", mid)).encode(), PROVIDER)
    assert isinstance(other, MessageError) and other.reason == "sender"
    wrong = _provenance(PROVIDER, mid)
    wrong["activity"]["coding"][0]["code"] = "UPDATE"
    [(_, bad)] = parse_json(json.dumps(wrong).encode(), PROVIDER)
    assert isinstance(bad, MessageError) and bad.reason == "activity"


def test_a_provider_correction_keeps_its_link_to_the_original() -> None:
    bundle = json.loads((EXAMPLES_DIR / "assessment-outcome.json").read_text("utf-8"))
    original = new_id()
    bundle["entry"][0]["resource"].setdefault("extension", []).append(
        {"url": EXT_FOLLOW_UP_OF, "valueId": original}
    )
    [(_, sub)] = parse_json(json.dumps(bundle).encode(), PROVIDER)
    assert isinstance(sub, Submission) and sub.refers_to == original
    bundle["entry"][0]["resource"]["extension"][-1]["valueId"] = "not-an-id"
    with pytest.raises(MessageError) as err:
        parse_message(json.dumps(bundle))
    assert err.value.reason == "follow-up-of"


def test_the_outbox_marks_an_original_corrected_then_withdrawn_once_each(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    original, c1, c2, w = new_id(), new_id(), new_id(), new_id()
    box.write(original, b"{}")
    assert box.status(original) is None
    box.follow_up(original, c1, withdrawal=False)
    box.follow_up(original, c1, withdrawal=False)  # redelivered: no second entry
    box.follow_up(original, c2, withdrawal=False)
    assert box.status(original) == {
        "message_id": original,
        "status": "corrected",
        "corrections": [c1, c2],
        "withdrawn_by": None,
    }
    box.follow_up(original, w, withdrawal=True)
    box.follow_up(original, new_id(), withdrawal=True)  # the first withdrawal stays
    status = box.status(original)
    assert status is not None and (status["status"], status["withdrawn_by"]) == ("withdrawn", w)
    assert json.loads((tmp_path / f"{original}.json").read_text()) == {}  # the original stays
    for unsafe in ("../escape", "a/b", ""):
        with pytest.raises(ValueError):
            box.follow_up(unsafe, w, withdrawal=True)
        with pytest.raises(ValueError):
            box.follow_up(original, unsafe, withdrawal=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{original}.json", f"{original}.status.json"]
    )


def test_a_zvh_reads_in_its_outbox_which_message_a_follow_up_is_about() -> None:
    from adapters.zvh.translate import to_zvh

    bundle = json.loads((EXAMPLES_DIR / "assessment-outcome.json").read_text("utf-8"))
    original = new_id()
    bundle["entry"][0]["resource"].setdefault("extension", []).append(
        {"url": EXT_FOLLOW_UP_OF, "valueId": original}
    )
    doc = to_zvh(parse_message(json.dumps(bundle)))
    assert doc["corrects"] == original and doc["decision"]  # still the flat assessment document
    withdrawal = json.loads((EXAMPLES_DIR / "withdrawal.json").read_text("utf-8"))
    doc = to_zvh(parse_message(json.dumps(withdrawal)))
    assert (
        doc["type"] == "withdrawal"
        and doc["withdraws"] == withdrawal["entry"][0]["resource"]["extension"][0]["valueId"]
    )

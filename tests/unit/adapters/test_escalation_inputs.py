"""Escalations from the ZVH (JSON, CSV) and from a provider's EPD (CSV, plain FHIR JSON): each
becomes the same Escalation, raised in the sender's own name, on the approach's public task;
hostile input -- an unknown reason, no-bed without a security level, an ambulant "bed", a
reason smuggled in as free text, an injected column -- is refused with its place and reason.
(An escalation for a case the router never routed is refused by the router: see
tests/unit/router/test_ladder.py and tests/integration/test_escalation_ladder.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.provider.inputs import parse_csv as provider_csv
from adapters.provider.inputs import parse_json as provider_json
from adapters.zvh.csvbatch import parse_csv as zvh_csv
from adapters.zvh.format import ZvhEscalation, ZvhEscalationAnswer, parse_bytes, parse_document
from schemas.errors import MessageError
from schemas.flows.escalation import Escalation, escalation_message
from schemas.messaging import MessageMeta
from schemas.vocab import (
    EscalationAction,
    EscalationLevel,
    EscalationReason,
    EventCode,
    LegalBasis,
    PurposeOfUse,
    SecurityLevel,
)

DOC: dict[str, Any] = {
    "type": "escalation", "escalation_id": "ESC-1", "case_id": "MN-1", "reason": "no-bed",
    "security_level": "3", "stuck_since": "2026-11-01", "explanation": "Geen bed.",
}  # fmt: skip


def refused(data: Any) -> list[tuple[str, str | None]]:
    with pytest.raises(MessageError) as e:
        parse_document(data)
    return [(i.path, i.reason) for i in e.value.issues]


def test_a_zvh_no_bed_escalation_names_its_level_and_goes_regional_first() -> None:
    doc = parse_document(DOC)
    assert isinstance(doc, ZvhEscalation)
    e = doc.to_escalation("zvh-a")
    assert (e.raised_by, e.zvh, e.referral_id) == ("zvh-a", "zvh-a", "MN-1")
    assert (e.reason, e.security_level, e.level) == (
        EscalationReason.NO_BED, SecurityLevel.LEVEL_3, EscalationLevel.REGIONAL
    )
    national = parse_document({**DOC, "level": "national"})
    assert isinstance(national, ZvhEscalation)
    assert national.to_escalation("zvh-a").level is EscalationLevel.NATIONAL


@pytest.mark.parametrize(
    ("change", "where", "reason"),
    [
        ({"reason": "no-bed-please"}, "reason", "enum"),  # not in the closed list
        ({"reason": "Jan Jansen heeft geen bed"}, "reason", "enum"),  # free text is no reason
        ({"security_level": None}, "security_level", "security-level"),
        ({"security_level": "ambulant"}, "security_level", "security-level"),
        ({"security_level": "5"}, "security_level", "enum"),
        ({"reason": "other", "explanation": None}, "explanation", "explanation"),
        ({"level": "europe"}, "level", "enum"),
        ({"case_id": "MN-1; DROP TABLE"}, "case_id", "string_pattern_mismatch"),
        # no person in an escalation doc; the field is not named back (it may be personal data)
        ({"bsn": "999990019"}, "(unknown field)", "extra_forbidden"),
    ],
)
def test_hostile_zvh_escalations_are_refused_where_they_go_wrong(
    change: dict[str, Any], where: str, reason: str
) -> None:
    data = {k: v for k, v in {**DOC, **change}.items() if v is not None}
    assert (where, reason) in refused(data)


def test_a_zvh_file_mixes_referral_consent_and_escalation_items_each_on_its_own() -> None:
    raw = json.dumps([DOC, {**DOC, "reason": "bogus"}]).encode()
    [(i, good), (j, bad)] = parse_bytes(raw)
    assert (i, j) == (0, 1)
    assert isinstance(good, ZvhEscalation) and isinstance(bad, MessageError)
    assert bad.issues[0].path == "[1].reason"


def test_a_zvh_answer_as_regional_step() -> None:
    doc = parse_document({
        "type": "escalation-answer", "answer_id": "A-1", "escalation_id": "ESC-9",
        "raised_by": "fivoor", "case_id": "MN-1", "action": "request-info",
        "note": "Welk niveau is nodig?",
    })  # fmt: skip
    assert isinstance(doc, ZvhEscalationAnswer)
    a = doc.to_answer("zvh-a")
    assert (a.answered_by, a.level, a.action) == (
        "zvh-a", EscalationLevel.REGIONAL, EscalationAction.REQUEST_INFO
    )
    assert ("note", "note") in refused({**doc.model_dump(mode="json"), "note": None} | {
        "type": "escalation-answer"})  # fmt: skip


ZVH_CSV = (
    "escalation_id;case_id;reason;security_level;stuck_since;explanation\n"
    "ESC-1;MN-1;no-bed;3;2026-11-01;Geen bed\n"
    "ESC-2;MN-2;no-bed;;2026-11-01;Niveau vergeten\n"
    "ESC-3;MN-3;geen-idee;;2026-11-01;\n"
)


def test_a_zvh_escalation_csv_refuses_per_line() -> None:
    rows = zvh_csv(ZVH_CSV.encode())
    assert [line for line, _ in rows] == [2, 3, 4]
    [ok, no_level, unknown] = [item for _, item in rows]
    assert isinstance(ok, ZvhEscalation) and ok.security_level is SecurityLevel.LEVEL_3
    assert isinstance(no_level, MessageError) and isinstance(unknown, MessageError)
    assert no_level.issues[0].path == "line 3: security_level"
    assert no_level.issues[0].reason == "security-level"
    assert unknown.issues[0].path == "line 4: reason"


def test_a_zvh_escalation_csv_refuses_an_injected_column() -> None:
    with pytest.raises(MessageError) as e:
        zvh_csv(ZVH_CSV.replace("explanation\n", "explanation;bsn\n", 1).encode())
    assert e.value.reason == "unknown-column"


PROVIDER_CSV = (
    "escalation_id;zvh;case_id;reason;security_level;stuck_since;level;explanation\n"
    "P-1;zvh-a;MN-1;no-provider;;2026-11-01;national;Geen uitvoerder gevonden\n"
    "P-2;zvh-a;MN-1;no-bed;;2026-11-01;regional;\n"
)


def test_a_provider_raises_escalations_by_csv_in_its_own_name() -> None:
    [(_, ok), (_, bad)] = provider_csv(PROVIDER_CSV.encode(), "aanbieder-a")
    assert not isinstance(ok, MessageError)
    assert ok.event is EventCode.ESCALATION
    assert ok.detail is not None and ok.detail.citation == "task-lcp-levensloopaanpak"
    e: Escalation = ok.model
    assert (e.raised_by, e.level, e.reason) == (
        "aanbieder-a", EscalationLevel.NATIONAL, EscalationReason.NO_PROVIDER
    )
    assert isinstance(bad, MessageError)
    assert (bad.issues[0].path, bad.issues[0].reason) == ("line 3: security_level",
                                                          "security-level")  # fmt: skip


def test_a_provider_answers_by_csv_as_regional_step() -> None:
    raw = (
        b"answer_id;escalation_id;raised_by;zvh;case_id;action;assignee;note\n"
        b"A-1;ESC-1;zvh-a;zvh-a;MN-1;assign;aanbieder-b;Bed bij B\n"
        b"A-2;ESC-1;zvh-a;zvh-a;MN-1;assign;;Aan wie?\n"
    )
    [(_, ok), (_, bad)] = provider_csv(raw, "aanbieder-a")
    assert not isinstance(ok, MessageError) and ok.event is EventCode.ESCALATION_ANSWER
    assert ok.model.answered_by == "aanbieder-a" and ok.model.assignee == "aanbieder-b"
    assert isinstance(bad, MessageError) and bad.issues[0].reason == "assignee"


def test_a_provider_raises_an_escalation_as_a_plain_fhir_task() -> None:
    e = Escalation(
        escalation_id="P-9", raised_by="aanbieder-a", raised_at="2026-11-02T10:00:00Z",  # type: ignore[arg-type]
        zvh="zvh-a", referral_id="MN-1", reason=EscalationReason.STUCK,
        stuck_since="2026-11-01",  # type: ignore[arg-type]
        explanation="Gemeente en aanbieder wachten op elkaar.",
    )  # fmt: skip
    meta = MessageMeta.new(EventCode.ESCALATION, "aanbieder-a", PurposeOfUse.ESCALATION,
                           LegalBasis.PUBLIC_TASK)  # fmt: skip
    task = escalation_message(e, meta)["entry"][1]["resource"]
    [(_, sub)] = provider_json(json.dumps(task).encode(), "aanbieder-a")
    assert not isinstance(sub, MessageError), sub
    assert sub.event is EventCode.ESCALATION and sub.model.reason is EscalationReason.STUCK
    task["reasonCode"]["coding"][0]["code"] = "bribe"
    [(_, bad)] = provider_json(json.dumps(task).encode(), "aanbieder-a")
    assert isinstance(bad, MessageError)

"""The input limits and the hostile-input rules of docs/adapters/limits.md, without Kafka: each
limit refuses with its own reason before the work it bounds, reasons never carry input text,
an inbox answers every entry, and the ZVH adapter names documents by content."""

from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.common.csvfile import read_rows
from adapters.common.inbox import NAME_MAX, Inbox, report_name
from adapters.common.limits import InputLimits, read_json, safe_detail
from adapters.zvh.format import parse_bytes, parse_document
from adapters.zvh.service import ZvhAdapter, attempt_message_id, content_key
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.apps.synthetic import synthetic_bsn
from broker.config import Settings
from schemas.csvsafe import neutralise
from schemas.errors import MessageError
from schemas.jsontext import nesting_depth

DOC = Path(__file__).parents[3] / "docs" / "adapters" / "limits.md"
LIMITS = InputLimits()


def test_the_documented_limits_are_the_settings_defaults() -> None:
    table = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\| `(\w+)` \| (\d+) \|", DOC.read_text(), re.M)
    }
    fields = Settings.model_fields
    assert len(table) == 8
    for name, default in table.items():
        assert fields[name].default == default, name
    assert InputLimits.of(Settings()) == LIMITS


def refused(call: Any) -> MessageError:
    with pytest.raises(MessageError) as err:
        call()
    return err.value


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 5000 + b"]" * 5000, "too-deep"),  # json's reader would hit a RecursionError
        (b"[" * 33 + b"]" * 33, "too-deep"),
        ('{"a": 1}'.encode("utf-16"), "encoding"),
        (b"\xff\xfe{", "encoding"),
        (b'{"a": NaN}', "not-json"),
        (b" " * (LIMITS.max_bytes + 1), "too-large"),
    ],
)
def test_json_is_judged_before_it_is_parsed(raw: bytes, reason: str) -> None:
    assert refused(lambda: read_json(raw, LIMITS)).reason == reason


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert nesting_depth('{"a": "[[[[{{{{\\"[["}', 10) == 1
    assert nesting_depth("[" * 32 + "]" * 32, 32) == 32
    assert read_json(b"\xef\xbb\xbf" + b"[" * 32 + b"]" * 32, LIMITS) is not None  # BOM is fine


def test_too_many_items_refuse_the_file() -> None:
    small = InputLimits(batch_items=2)
    assert refused(lambda: parse_bytes(b"[{}, {}, {}]", small)).reason == "too-many-items"
    rows = b"case_id\n1\n2\n3\n"
    assert refused(lambda: read_rows(rows, ["case_id"], ["case_id"], small)).reason == (
        "too-many-items"
    )


def test_csv_lines_and_cells_have_limits() -> None:
    long_line = b"case_id;x\n" + b"a" * (LIMITS.csv_row_bytes + 1) + b";b\n"
    err = refused(lambda: read_rows(long_line, ["case_id"], ["case_id", "x"]))
    assert (err.reason, err.issues[0].path) == ("row-too-large", "line 2")
    big_cell = b"case_id;x\n1;" + b"c" * 200_000 + b"\n2;ok\n"
    rows = read_rows(big_cell, ["case_id"], ["case_id", "x"])
    first, second = rows[0][1], rows[1][1]
    assert isinstance(first, MessageError) and first.reason == "cell-too-large"
    assert second == {"case_id": "2", "x": "ok"}


def test_unknown_fields_and_columns_are_named_by_place_not_by_their_text() -> None:
    bsn = synthetic_bsn(random.Random())
    err = refused(lambda: read_rows(f"case_id;{bsn}\n1;2\n".encode(), ["case_id"], ["case_id"]))
    assert err.reason == "unknown-column" and bsn not in str(err)
    p = {"bsn": bsn, "family_name": "Geheimnaam", "birth_date": "1980-01-01"}
    doc = demo.referral("C-1", "midden-nederland", p, date.today())
    doc["person"]["Geheimnaam"] = bsn
    err = refused(lambda: parse_document(doc))
    assert "Geheimnaam" not in str(err) and bsn not in str(err)
    assert safe_detail(err) == "extra_forbidden at person.(unknown field)"


def test_implausible_dates_are_refused() -> None:
    today = date.today()
    for born in (today + timedelta(days=1), date(today.year - 130, 1, 1)):
        p = {"bsn": "111222333", "family_name": "X", "birth_date": born.isoformat()}
        doc = demo.referral("C-1", "midden-nederland", p, today)
        assert refused(lambda d=doc: parse_document(d)).reason == "implausible-date"
    p = {"bsn": "111222333", "family_name": "X", "birth_date": "1990-01-01"}
    doc = demo.referral("C-1", "midden-nederland", p, today + timedelta(days=400))
    assert refused(lambda: parse_document(doc)).reason == "implausible-date"
    assert parse_document(demo.referral("C-1", "midden-nederland", p, today))


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+31 6 1234", "'+31 6 1234"),
        ("\tcmd", "'\tcmd"),
        ("-12.50", "-12.50"),
        ("Jansen", "Jansen"),
    ],
)
def test_formula_cells_are_neutralised(cell: str, written: str) -> None:
    assert neutralise(cell) == written


def test_the_payer_csv_ketenbus_writes_is_neutralised() -> None:
    from adapters.payer.formats import vws

    column = vws.ANSWER_COLUMNS[-1]
    written = vws.write_answer([{column: '=HYPERLINK("http://x")'}]).decode()
    assert "'=HYPERLINK" in written and ";=HYPERLINK" not in written


def test_an_inbox_answers_every_entry_and_follows_no_link(tmp_path: Path) -> None:
    box = Inbox(tmp_path / "in", patterns=("*.json", "*.csv"))
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    (box.directory / "link.json").symlink_to(outside)
    (box.directory / "notes.TXT").write_text("x")
    (box.directory / "ok.JSON").write_text("{}")
    (box.directory / "sub").mkdir()
    claimed = {p.name: box.unreadable(p) for p in box.claim()}
    assert claimed["link.json"] is not None and claimed["link.json"][0] == "symlink"
    assert claimed["notes.TXT"] is not None and claimed["notes.TXT"][0] == "file-type"
    assert claimed["ok.JSON"] is None and "sub" not in claimed
    assert (box.processing / "link.json").is_symlink() and outside.read_text() == "{}"


def test_long_names_get_their_report_and_attempts_are_counted(tmp_path: Path) -> None:
    box = Inbox(tmp_path / "in")
    name = "n" * 250 + ".json"
    assert len(report_name(name, ".error.json").encode()) <= NAME_MAX
    assert report_name("a.json", ".error.json") == "a.json.error.json"
    path = box.processing / name
    path.write_text("{")
    assert [box.failed_attempt(path) for _ in range(3)] == [1, 2, 3]
    box.fail(path, {"reason": "x"})
    assert box.error_report(name).exists() and not list(box.processing.iterdir())


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> ZvhAdapter:
    state = tmp_path_factory.mktemp("dep")
    dep = create_local(state, demo.PARTIES)
    zvh = "zvh-midden-nederland"
    return ZvhAdapter(Settings(state_dir=state), dep.party_client(zvh), state / "in", state / "out")


def test_a_document_is_named_by_its_content(adapter: ZvhAdapter) -> None:
    p = {"bsn": synthetic_bsn(random.Random()), "family_name": "X", "birth_date": "1980-01-01"}
    doc = demo.referral("C-7", "midden-nederland", p, date.today())
    reexported = json.loads(json.dumps(doc, indent=4))
    reexported["person"]["family_name"] = " X "  # whitespace an export may add
    a, b = parse_document(doc), parse_document(reexported)
    assert content_key(a) == content_key(b)
    mid, repeat = adapter.identify(a)
    assert mid == attempt_message_id(adapter.party_id, content_key(a), 0) and not repeat
    adapter.in_flight.add(mid)
    assert adapter.identify(b) == (mid, True), "in flight: the original, not sent again"
    adapter._record_response({"in_reply_to": mid, "status": "refused"})
    retry, repeat = adapter.identify(b)
    assert retry == attempt_message_id(adapter.party_id, content_key(a), 1) and not repeat
    adapter._record_response({"in_reply_to": retry, "status": "accepted"})
    assert adapter.identify(a) == (retry, True)


def test_a_refusal_never_replaces_an_accepted_response(adapter: ZvhAdapter) -> None:
    adapter._record_response({"in_reply_to": "m-1", "status": "accepted"})
    before = adapter.conflicts
    adapter._record_response({"in_reply_to": "m-1", "status": "refused"})
    assert adapter.responses["m-1"]["status"] == "accepted"
    assert adapter.conflicts == before + 1


def test_responses_in_the_outbox_survive_a_restart(
    adapter: ZvhAdapter, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A restarted adapter still knows a refused document as refused: a new attempt."""
    p = {"bsn": synthetic_bsn(random.Random()), "family_name": "X", "birth_date": "1980-01-01"}
    doc = parse_document(demo.referral("C-8", "midden-nederland", p, date.today()))
    first = attempt_message_id(adapter.party_id, content_key(doc), 0)
    response = {"type": "response", "in_reply_to": first, "status": "refused"}
    adapter.outbox.write("r-1", json.dumps(response).encode())
    again = ZvhAdapter(
        adapter.settings,
        adapter.client,
        adapter.outbox.directory.parent / "in",
        adapter.outbox.directory,
    )
    assert again.load_responses() >= 1
    mid, repeat = again.identify(doc)
    assert mid == attempt_message_id(adapter.party_id, content_key(doc), 1) and not repeat


def test_provider_items_are_named_by_content_and_refused_ones_retried() -> None:
    """The provider's CSV rows and plain resources (issue 20: they had random ids)."""
    from adapters.common.attempts import AttemptLog
    from adapters.provider.inputs import parse_csv as provider_csv
    from adapters.provider.service import submission_key

    header = "report_id;location_id;measured_at;level_2_in_service;level_2_occupied;"
    header += "level_2_available"
    rows = f"{header}\nR-1;LOC-1;{date.today()}T08:00:00+00:00;10;4;6\n"
    [(_, first)] = provider_csv(rows.encode(), "fivoor")
    [(_, again)] = provider_csv(rows.replace(";6\n", "; 6\n").encode(), "fivoor")
    assert not isinstance(first, MessageError) and not isinstance(again, MessageError)
    assert submission_key(first) == submission_key(again)
    log = AttemptLog("fivoor")
    mid, repeat = log.identify(submission_key(first))
    assert not repeat
    log.sent(mid)
    assert log.identify(submission_key(again)) == (mid, True)
    log.answered(mid, accepted=False)
    retry, repeat = log.identify(submission_key(again))
    assert retry != mid and not repeat
    log.answered(retry, accepted=True)
    assert not log.answered(retry, accepted=False) and log.outcomes[retry]
    assert log.identify(submission_key(first)) == (retry, True)


def _judge_inbox_file(suite: str, path: Path, limits: InputLimits) -> Any:
    """What an adapter's inbox makes of one file before anything is sent (the order of
    ``AdapterService.intake``: type, size, then the suite's reader), as the kit's ``Outcome``."""
    from adapters.provider import inputs as provider
    from adapters.zvh.csvbatch import parse_csv
    from broker.apps.conformance.runner import Outcome

    why = Inbox(path.parent, patterns=("*.json", "*.csv")).unreadable(path)
    if why is not None:
        return Outcome("refused", {why[0]})
    if path.stat().st_size > limits.max_bytes:
        return Outcome("refused", {"too-large"})
    raw, csv = path.read_bytes(), path.suffix == ".csv"
    try:
        if suite == "zvh":
            items: list[Any] = list(parse_csv(raw, limits)) if csv else parse_bytes(raw, limits)
        else:
            read = provider.parse_csv if csv else provider.parse_json
            items = list(read(raw, "fivoor", limits))
    except MessageError as err:
        return Outcome("refused", {err.reason}, [i.path for i in err.issues])
    errors = [item for _, item in items if isinstance(item, MessageError)]
    status = "refused" if errors and len(errors) == len(items) else "partial" if errors else (
        "accepted")
    return Outcome(status, {e.reason for e in errors}, [i.path for e in errors for i in e.issues])


def _conformance_inbox_cases() -> list[Any]:
    from broker.apps.conformance.cases import shipped_suites

    return [
        pytest.param(name, c, id=f"{name}:{c.id}")
        for name, suite in sorted(shipped_suites().items())
        for c in suite.cases
        if "inbox" in c.channels
    ]


@pytest.mark.parametrize(("suite", "case"), _conformance_inbox_cases())
def test_the_conformance_cases_hold_for_the_inbox_readers(
    suite: str, case: Any, tmp_path: Path
) -> None:
    """The kit's own case files (schemas/conformance/*.yaml, docs/conformance.md), judged here
    without Kafka: every case's adapter verdict holds for the reader its inbox uses."""
    from broker.apps.conformance.cases import render
    from broker.apps.conformance.runner import Runner

    settings = Settings()
    rendered = render(case, settings, "midden-nederland", "zvh-midden-nederland")
    path = tmp_path / rendered.name
    path.write_bytes(rendered.body)
    outcome = _judge_inbox_file(suite, path, InputLimits.of(settings))
    assert Runner.judge(case, "inbox", outcome) == []

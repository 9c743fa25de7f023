"""The provider's outcomes survive a restart (issue 20 point 5, docs/adapters/provider.md): the
router's responses are delivered to the provider's outbox, and a restarted adapter reads them
back, so a row refused before the restart is a new attempt when it is sent again, and an
accepted row is still not sent twice. No Kafka: the responses are the router's own messages
(``schemas.flows.response.response_message``) written as the adapter writes deliveries."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from adapters.provider.inputs import Submission, parse_csv
from adapters.provider.service import ProviderAdapter, submission_key
from broker.apps.deployment import create_local
from broker.apps.scenarios import demo
from broker.config import Settings
from schemas.errors import Issue, MessageError
from schemas.flows.response import MessageResponse, response_message
from schemas.messaging import ResponseCode

PROVIDER = "fivoor"
HEADER = "report_id;location_id;measured_at;level_2_in_service;level_2_occupied;level_2_available"


def row(report_id: str) -> Submission:
    text = f"{HEADER}\n{report_id};LOC-1;{date.today()}T08:00:00+00:00;10;4;6\n"
    [(_, sub)] = parse_csv(text.encode(), PROVIDER)
    assert not isinstance(sub, MessageError)
    return sub


def answer(a: ProviderAdapter, request_id: str, code: ResponseCode) -> None:
    """The router's response to ``request_id``, delivered to the outbox as the adapter does."""
    issues = () if code is ResponseCode.OK else (Issue("", "security", "no consent", "consent"),)
    router = a.client.registry.router().id
    bundle = response_message(MessageResponse(request_id, code, issues), router, PROVIDER)
    a.outbox.write(bundle["id"], json.dumps(bundle, indent=2).encode())


def test_a_restarted_provider_knows_what_was_refused_and_what_accepted(tmp_path: Path) -> None:
    dep = create_local(tmp_path, demo.PARTIES)
    settings = Settings(state_dir=tmp_path)

    def start() -> ProviderAdapter:
        return ProviderAdapter(settings, dep.party_client(PROVIDER), tmp_path / "out")

    first = start()
    refused, accepted, pending = row("R-1"), row("R-2"), row("R-3")
    mid_refused, _ = first.attempts.identify(submission_key(refused))
    mid_accepted, _ = first.attempts.identify(submission_key(accepted))
    mid_pending, _ = first.attempts.identify(submission_key(pending))
    for mid in (mid_refused, mid_accepted, mid_pending):
        first.attempts.sent(mid)
    answer(first, mid_refused, ResponseCode.FATAL_ERROR)
    answer(first, mid_accepted, ResponseCode.OK)
    answer(first, mid_accepted, ResponseCode.FATAL_ERROR)  # a later refusal never wins
    # what else lies in an outbox: a status file, a delivery, a torn or hostile file
    first.outbox.write("0" * 8, b'{"message_id": "x", "status": "withdrawn"}', ".status.json")
    (first.outbox.directory / "torn.json").write_bytes(b'{"resourceType": "Bundle", "response"')
    (first.outbox.directory / "deep.json").write_bytes(b"[" * 5000 + b'"response"' + b"]" * 5000)

    again = start()  # the restart: nothing in memory
    assert again.attempts.identify(submission_key(refused)) == (mid_refused, False), "not read"
    assert again.load_responses() == 3
    retry, repeat = again.attempts.identify(submission_key(refused))
    assert retry != mid_refused and not repeat, "refused before the restart: a new attempt"
    assert retry == again.attempts.message_id(submission_key(refused), 1)
    assert again.attempts.identify(submission_key(accepted)) == (mid_accepted, True)
    assert again.attempts.outcomes[mid_accepted] is True
    # no answer before the restart: the same id again (the router's replay guard decides)
    assert again.attempts.identify(submission_key(pending)) == (mid_pending, False)

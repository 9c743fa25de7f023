"""Retention terms in the topic catalogue, their overrides and the file pruner (issue 16 §6;
AVG art. 5(1)(e): no longer than needed; docs/retention.md states each term)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from adapters.common.prune import prune_files
from adapters.provider.journal import journal_topic
from broker.config import ConfigError, Settings
from schemas.topics import AUDIT, CONSENT, DAY_MS, IN_REFERRAL, KEY_STORE, catalogue, outbound

DOC = Path(__file__).resolve().parents[3] / "docs" / "retention.md"


def test_every_catalogue_topic_has_a_term_with_reason_and_source() -> None:
    for spec in (*catalogue(("zvh-x",)), journal_topic("provider-x")):
        assert spec.retention is not None, spec.name
        assert spec.retention.reason and spec.retention.source, spec.name
        assert "retention.ms" in spec.topic_config(), spec.name


def test_every_term_is_documented() -> None:
    text = DOC.read_text()
    for spec in (*catalogue(("p",)), journal_topic("p")):
        name = "out.<party>" if spec.name == "out.p" else spec.name
        name = "journal.<party>" if spec.name == "journal.p" else name
        name = "keystore.<party>" if spec.name == "keystore.p" else name
        assert f"`{name}`" in text, f"{name} missing from docs/retention.md"


def test_terms_in_milliseconds() -> None:
    assert IN_REFERRAL.topic_config()["retention.ms"] == str(14 * DAY_MS)
    assert outbound("p").topic_config()["retention.ms"] == str(30 * DAY_MS)
    assert AUDIT.topic_config()["retention.ms"] == str(5 * 365 * DAY_MS)
    assert CONSENT.topic_config()["cleanup.policy"] == "compact"
    assert KEY_STORE.topic_config()["cleanup.policy"] == "compact"
    assert KEY_STORE.topic_config()["delete.retention.ms"] == str(DAY_MS)


def test_overrides_by_name_then_longest_prefix() -> None:
    s = Settings(retention_days={"out.*": 60, "out.zvh*": 7, "audit": -1})
    assert outbound("provider").topic_config(s.retention_days)["retention.ms"] == str(60 * DAY_MS)
    assert outbound("zvh-r").topic_config(s.retention_days)["retention.ms"] == str(7 * DAY_MS)
    assert AUDIT.topic_config(s.retention_days)["retention.ms"] == "-1"
    assert IN_REFERRAL.topic_config(s.retention_days)["retention.ms"] == str(14 * DAY_MS)


def test_override_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETENBUS_RETENTION_DAYS", '{"in.*": 2}')
    assert Settings().retention_days == {"in.*": 2}


@pytest.mark.parametrize("bad", ['{"a b": 1}', '{"*out": 1}', '{"out": "long"}', "[1]"])
def test_hostile_overrides_are_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("KETENBUS_RETENTION_DAYS", bad)
    with pytest.raises(ConfigError, match="retention_days"):
        Settings()


def _aged(path: Path, days: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    then = time.time() - days * 86400
    os.utime(path, (then, then))
    return path


def test_prune_removes_old_inbox_copies_and_keeps_the_rest(tmp_path: Path) -> None:
    old_done = _aged(tmp_path / "zvh" / "inbox" / "processed" / "a.json", 31)
    old_failed = _aged(tmp_path / "zvh" / "inbox" / "failed" / "b.json.error.json", 40)
    new_done = _aged(tmp_path / "zvh" / "inbox" / "processed" / "c.json", 29)
    waiting = _aged(tmp_path / "zvh" / "inbox" / "d.json", 400)  # not yet processed
    outbox = _aged(tmp_path / "zvh" / "outbox" / "e.json", 400)  # the recipient's record
    report = prune_files(tmp_path)
    assert not old_done.exists() and not old_failed.exists()
    assert new_done.exists() and waiting.exists() and outbox.exists()
    assert report.removed == {"inbox.processed": 1, "inbox.failed": 1}


def test_prune_follows_no_symlink_out_of_the_data_dir(tmp_path: Path) -> None:
    elsewhere = _aged(tmp_path / "elsewhere" / "precious.json", 400)
    inbox = tmp_path / "data" / "p" / "inbox" / "processed"
    inbox.mkdir(parents=True)
    (inbox / "link.json").symlink_to(elsewhere)
    (tmp_path / "data" / "q" / "inbox").mkdir(parents=True)
    (tmp_path / "data" / "q" / "inbox" / "failed").symlink_to(elsewhere.parent)
    prune_files(tmp_path / "data")
    assert elsewhere.exists()


def test_prune_override_keeps_for_ever(tmp_path: Path) -> None:
    old = _aged(tmp_path / "inbox" / "processed" / "a.json", 400)
    prune_files(tmp_path, retention_days={"inbox.*": -1})
    assert old.exists()

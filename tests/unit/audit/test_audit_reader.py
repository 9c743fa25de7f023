"""Readers: JSONL files, and the audit topic read to its high watermark (real broker)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from audit_support import audit_signers, chain_records, key, write_signers
from typer.testing import CliRunner

from broker.apps.cli.main import app
from broker.audit import verify
from broker.audit.reader import AuditReadError, read_jsonl, read_topic, write_jsonl

RECORDS = chain_records(30)


def test_jsonl_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "audit.jsonl"
    assert write_jsonl(RECORDS, f) == 30
    assert f.read_bytes().count(b"\n") == 30
    assert list(read_jsonl(f)) == RECORDS
    with pytest.raises(ValueError, match="newline"):
        write_jsonl([b"a\nb"], tmp_path / "bad.jsonl")


def test_jsonl_without_final_newline_and_with_a_blank_line(tmp_path: Path) -> None:
    f = tmp_path / "audit.jsonl"
    f.write_bytes(RECORDS[0] + b"\n\n" + RECORDS[1])
    got = list(read_jsonl(f))
    assert got == [RECORDS[0], b"", RECORDS[1]]
    assert [type(line).__name__ for line in got] == ["bytes", "BadLine", "BadLine"]


async def _produce(bootstrap: str, topic: str, records: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=100,
                                max_batch_size=1 << 20, max_request_size=1 << 22)
    await producer.start()
    try:
        # multi-record batches: the case where end_offsets() is wrong on Tansu
        futures = [await producer.send(topic, raw, key=b"router-1") for raw in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


@pytest.mark.integration
def test_read_topic_to_the_high_watermark_and_verify(kafka_bootstrap: str,
                                                     tmp_path: Path) -> None:
    topic = f"audit-{uuid.uuid4().hex[:8]}"
    asyncio.run(_produce(kafka_bootstrap, topic, RECORDS))
    got = asyncio.run(read_topic(kafka_bootstrap, topic))
    assert got == RECORDS
    assert verify(got, audit_signers({"router-1": key(1).public_key()})).ok

    keys = write_signers(tmp_path / "audit-keys.json",
                         audit_signers({"router-1": key(1).public_key()}))
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "verify", "--topic", topic, "--keys", str(keys)],
                           env={"KETENBUS_BOOTSTRAP_SERVERS": kafka_bootstrap})
    assert result.exit_code == 0, result.output
    assert "intact: 30 records" in result.output
    out = tmp_path / "export.jsonl"
    result = runner.invoke(app, ["audit", "export", "--bootstrap", kafka_bootstrap,
                                 "--topic", topic, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert list(read_jsonl(out)) == RECORDS


@pytest.mark.integration
def test_empty_and_missing_topics(kafka_bootstrap: str) -> None:
    topic = f"audit-{uuid.uuid4().hex[:8]}"
    asyncio.run(_produce(kafka_bootstrap, topic, []))
    assert asyncio.run(read_topic(kafka_bootstrap, topic)) == []
    with pytest.raises(AuditReadError, match="does not exist"):
        asyncio.run(read_topic(kafka_bootstrap, "no-such-topic-" + uuid.uuid4().hex[:6]))

"""A fetched batch of deliveries is settled once (issue 19 point 4) and keeps the guarantee: a
delivery is acknowledged to Kafka only after it is durably in the outbox and after what was sent
on its behalf (the provider's journal) is acknowledged."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import pytest

from adapters.common.batch import DeliveryBatch, current_batch
from adapters.common.outbox import Outbox
from adapters.common.runtime import AdapterRuntime
from broker.config import Settings


def _names(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()}


def test_held_files_get_their_names_only_when_made_durable(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.hold()
    assert box.write("m1", b"one") is not None
    assert box.write("m2", b"two") is not None
    assert box.write("m1", b"again") is None, "a duplicate within the batch is written once"
    # nothing visible yet: the EPD (or a restart) sees no delivery that is not durable (the
    # writer threads may not even have created the temporary files yet)
    assert _names(tmp_path) <= {".m1.json.tmp", ".m2.json.tmp"}
    assert box.holding == 2
    assert box.make_durable() == 2
    assert _names(tmp_path) == {"m1.json", "m2.json"}
    assert (tmp_path / "m1.json").read_bytes() == b"one"
    assert box.write("m3", b"three") is not None, "after the batch: written at once again"
    assert (tmp_path / "m3.json").read_bytes() == b"three"


def test_a_crash_before_the_batch_is_durable_leaves_no_delivery(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.hold()
    box.write("m1", b"one")
    # the process dies here: a restarted adapter reads the folder again
    again = Outbox(tmp_path)
    assert not again.seen("m1"), "a temporary file is no delivery: the redelivery writes it"
    again.write("m1", b"one")
    assert (tmp_path / "m1.json").read_bytes() == b"one"


def test_a_discarded_batch_is_written_again_by_its_redelivery(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.write("before", b"0")
    box.hold()
    box.write("m1", b"one")
    assert box.discard() == 1
    assert _names(tmp_path) == {"before.json"}
    assert not box.seen("m1") and box.seen("before")
    assert box.write("m1", b"one") is not None


def test_a_batch_written_by_the_writer_threads_is_whole_and_in_place(tmp_path: Path) -> None:
    """Many files, several writer threads: each file holds exactly its own bytes (a file
    larger than one ``write`` call too) under its own name, and no temporary file is left."""
    box = Outbox(tmp_path, writers=4)
    contents = {f"m{i}": bytes([i % 251]) * (i * 997 % 5000 + 1) for i in range(200)}
    contents["big"] = b"\xff" * (3 * 1024 * 1024)
    box.hold()
    for mid, content in contents.items():
        box.write(mid, content)
    assert box.make_durable() == len(contents)
    assert _names(tmp_path) == {f"{mid}.json" for mid in contents}
    for mid, content in contents.items():
        assert (tmp_path / f"{mid}.json").read_bytes() == content
    box.close()


def test_held_files_are_synced_by_several_writer_threads_while_the_caller_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``write`` hands a held file to the writer threads and returns before it is synced (the
    adapter opens the next delivery meanwhile), several files are synced at once (their syncs
    share the file system's journal commits), and ``make_durable`` names nothing before every
    sync has finished."""
    gate, lock = threading.Event(), threading.Lock()
    syncing: list[str] = []
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        with lock:
            syncing.append(threading.current_thread().name)
        gate.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    box = Outbox(tmp_path, writers=3)
    box.hold()
    for i in range(3):
        box.write(f"m{i}", b"x")  # returns although no sync has finished
    deadline = time.monotonic() + 10
    while len(syncing) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(syncing) == 3, "three syncs in flight at once"
    assert all(n.startswith("outbox-writer") for n in syncing)
    durable = threading.Thread(target=box.make_durable)
    durable.start()
    time.sleep(0.05)
    assert not any(n.endswith(".json") for n in _names(tmp_path)), "named before it was synced"
    gate.set()
    durable.join(10)
    assert _names(tmp_path) == {"m0.json", "m1.json", "m2.json"}
    box.close()


def test_a_file_that_cannot_be_written_fails_the_batch_and_is_written_again(
    tmp_path: Path,
) -> None:
    """A write that fails in a writer thread (here: its temporary name is taken by a folder,
    as a full disk or a broken file system would fail it) fails ``make_durable``, so the batch
    is not committed; no file of the batch is left half-visible, and every id of the batch
    counts as not delivered: the redelivery writes them all. Never a delivery marked seen
    whose file is not there (it would be skipped as a duplicate and lost)."""
    box = Outbox(tmp_path)
    (tmp_path / ".bad.json.tmp").mkdir()
    box.hold()
    box.write("good", b"one")
    box.write("bad", b"two")
    with pytest.raises(OSError):
        box.make_durable()
    assert not (tmp_path / "good.json").exists() and not (tmp_path / "bad.json").exists()
    assert not box.seen("good") and not box.seen("bad")
    assert not (tmp_path / ".good.json.tmp").exists()
    (tmp_path / ".bad.json.tmp").rmdir()
    box.hold()  # the redelivery
    assert box.write("good", b"one") is not None and box.write("bad", b"two") is not None
    assert box.make_durable() == 2
    assert (tmp_path / "bad.json").read_bytes() == b"two"


def test_hostile_message_ids_are_refused_while_held(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.hold()
    for bad in ("../escape", "a/b", "", "x\x00y"):
        with pytest.raises(ValueError):
            box.write(bad, b"x")
    assert box.holding == 0


async def test_the_batch_raises_a_failed_send_after_all_have_finished() -> None:
    loop = asyncio.get_running_loop()
    ok, failed, late = loop.create_future(), loop.create_future(), loop.create_future()
    batch = DeliveryBatch()
    with batch:
        assert current_batch() is batch
        for f in (ok, failed, late):
            batch.add(f)
    assert current_batch() is None
    ok.set_result(1)
    failed.set_exception(ConnectionError("broker gone"))
    loop.call_later(0.01, late.set_result, 3)
    with pytest.raises(ConnectionError):
        await batch.acknowledged()
    assert late.done(), "every send finished before the failure was reported"


async def test_another_task_does_not_see_the_batch() -> None:
    """An inbox poll beside the delivery handler keeps awaiting each of its own sends."""
    seen: list[DeliveryBatch | None] = []

    async def poll() -> None:
        await asyncio.sleep(0.01)
        seen.append(current_batch())

    task = asyncio.create_task(poll())  # started before the batch, as the poll loop is
    with DeliveryBatch():
        await task
    assert seen == [None]


def _runtime(tmp_path: Path) -> AdapterRuntime:
    from broker.apps.deployment import create_local
    from broker.apps.scenarios import demo

    dep = create_local(tmp_path / "state", demo.PARTIES)

    async def deliver(_opened: object, _msg: object) -> None:
        return None

    return AdapterRuntime(
        Settings(bootstrap_servers="127.0.0.1:9"),  # never contacted here
        dep.party_client("fivoor"),
        Outbox(tmp_path / "outbox"),
        deliver,
    )


async def test_settling_a_batch_whose_journal_send_failed_leaves_no_delivery(
    tmp_path: Path,
) -> None:
    """The offsets are committed only when ``settle`` returns; when a record sent for the batch
    (the journal) was refused, settle raises, the batch's files never got their names and
    their ids count as not delivered: the redelivery writes them and sends the journal again."""
    runtime = _runtime(tmp_path)
    runtime.outbox.hold()
    runtime.outbox.write("m1", b"one")
    batch = DeliveryBatch()
    failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    failed.set_exception(ConnectionError("journal not acknowledged"))
    batch.add(failed)
    batch.delivered = 1
    with pytest.raises(ConnectionError):
        await runtime.settle(batch)
    assert _names(tmp_path / "outbox") == set()
    assert not runtime.outbox.seen("m1")
    assert runtime.delivered == 0, "a delivery counts only once it is durable"


async def test_settling_a_batch_makes_its_files_durable_after_its_sends(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    runtime.outbox.hold()
    runtime.outbox.write("m1", b"one")
    batch = DeliveryBatch()
    acked: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    batch.add(acked)
    settling = asyncio.create_task(runtime.settle(batch))
    await asyncio.sleep(0.05)
    assert not settling.done(), "settled before the journal record was acknowledged"
    assert _names(tmp_path / "outbox") <= {".m1.json.tmp"}
    batch.delivered = 1
    assert runtime.delivered == 0
    acked.set_result(None)
    await settling
    assert _names(tmp_path / "outbox") == {"m1.json"}
    assert runtime.delivered == 1


def test_a_follow_up_in_the_same_batch_makes_its_original_durable_first(tmp_path: Path) -> None:
    """A status file makes its original's id count as delivered after a restart: the original
    must never be only a temporary file when its status file exists (AVG art. 19 follow-ups)."""
    box = Outbox(tmp_path)
    box.hold()
    box.write("orig", b"original")
    box.write("corr", b"correction")
    box.follow_up("orig", "corr", withdrawal=False)
    assert (tmp_path / "orig.json").read_bytes() == b"original"
    assert (tmp_path / "orig.status.json").exists()
    again = Outbox(tmp_path)  # a crash here: the original is there, not lost as "seen"
    assert again.seen("orig")
    assert box.holding == 0
    box.write("later", b"x")
    assert box.holding == 1, "the batch is still held after the follow-up"


async def test_what_waits_for_durability_runs_only_once_the_files_are_visible(
    tmp_path: Path,
) -> None:
    """``ZvhAdapter.wait_response`` promises the response is in the outbox: a response becomes
    known through ``when_durable``, which runs after the batch's files got their names, never
    for a batch whose send failed (its files are discarded and written again)."""
    runtime = _runtime(tmp_path)
    seen: list[set[str]] = []
    for fail in (True, False):
        runtime.outbox.hold()
        runtime.outbox.write("m1", b"one")
        batch = DeliveryBatch()
        batch.when_durable(lambda: seen.append(_names(tmp_path / "outbox")))
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if fail:
            sent.set_exception(ConnectionError("not acknowledged"))
        else:
            sent.set_result(None)
        batch.add(sent)
        if fail:
            with pytest.raises(ConnectionError):
                await runtime.settle(batch)
            assert seen == [], "known although its file was discarded"
        else:
            await runtime.settle(batch)
    assert seen == [{"m1.json"}]

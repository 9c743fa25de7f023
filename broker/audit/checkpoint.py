"""Signed checkpoints of a chain's head: what makes a cut-off tail visible.

Removing the last records of a chain leaves a shorter chain that is still valid. A writer
therefore publishes its head (seq and the full hash) at a fixed cadence on the topic
``audit-checkpoint``, signed under the chain's own key, and an organisation keeps a copy out of
the broker operators' reach (``ketenbus audit checkpoint export``). Verifying against that copy
reports a chain that no longer reaches its checkpoint (``docs/audit-format.md``)::

    signed     = b"ketenbus-audit-checkpoint-v1" || canonical({"at", "chain", "hash", "seq"})
    checkpoint = canonical({"at", "chain", "hash", "kid", "seq", "sig"})

``at`` is a UTC instant with milliseconds and a ``Z``; ``sig`` is the lower-case hex Ed25519
signature over ``signed``. A checkpoint file is JSONL: one checkpoint per line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.audit.canonical import MAX_SAFE_INTEGER, canonical
from broker.audit.signers import ChainSigners
from schemas import topics

DOMAIN = b"ketenbus-audit-checkpoint-v1"
FIELDS = frozenset({"at", "chain", "hash", "kid", "seq", "sig"})
_HEX = frozenset("0123456789abcdef")


class CheckpointError(ValueError):
    """Bytes that are not a checkpoint, or a checkpoint that does not verify; says why."""


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and set(value) <= _HEX


@dataclass(frozen=True)
class Checkpoint:
    chain: str
    seq: int
    hash: str
    at: str
    kid: str
    sig: str

    def signed_bytes(self) -> bytes:
        body = {"at": self.at, "chain": self.chain, "hash": self.hash, "seq": self.seq}
        return DOMAIN + canonical(body)

    def encode(self) -> bytes:
        return canonical(
            {"at": self.at, "chain": self.chain, "hash": self.hash, "kid": self.kid,
             "seq": self.seq, "sig": self.sig}
        )

    @classmethod
    def decode(cls, raw: bytes) -> Checkpoint:
        """Strict: the canonical form of a JSON object with exactly the six members."""
        try:
            data: Any = json.loads(raw, object_pairs_hook=_no_duplicates)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"not JSON: {exc}") from exc
        if not isinstance(data, dict) or set(data) != FIELDS:
            raise CheckpointError(f"a checkpoint has exactly the members {sorted(FIELDS)}")
        seq = data["seq"]
        if type(seq) is not int or not 0 <= seq <= MAX_SAFE_INTEGER:
            raise CheckpointError("seq must be an integer >= 0")
        if not _hex(data["hash"], 64) or not _hex(data["sig"], 128):
            raise CheckpointError("hash and sig must be 64 and 128 lower-case hex digits")
        if not all(isinstance(data[k], str) and data[k] for k in ("chain", "kid", "at")):
            raise CheckpointError("chain, kid and at must be non-empty strings")
        cp = cls(data["chain"], seq, data["hash"], data["at"], data["kid"], data["sig"])
        if cp.encode() != raw:
            raise CheckpointError("not in canonical form")
        return cp

    def when(self) -> datetime:
        try:
            return datetime.fromisoformat(self.at.replace("Z", "+00:00"))
        except ValueError as exc:
            raise CheckpointError(f"at is not an instant: {exc}") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"duplicate member {name!r}")
        out[name] = value
    return out


def make_checkpoint(
    chain: str, seq: int, digest: str, key: Ed25519PrivateKey, kid: str, at: datetime
) -> Checkpoint:
    """Sign the head ``(seq, digest)`` of ``chain`` with the chain's key ``kid``."""
    unsigned = Checkpoint(chain, seq, digest, _instant(at), kid, "0" * 128)
    sig = key.sign(unsigned.signed_bytes()).hex()
    return Checkpoint(chain, seq, digest, unsigned.at, kid, sig)


def verify_checkpoint(cp: Checkpoint, signers: Mapping[str, ChainSigners]) -> None:
    """Raise ``CheckpointError`` unless ``cp`` is signed by a key declared for its chain and
    valid at its time: a checkpoint that does not verify is never evidence."""
    chain = signers.get(cp.chain)
    if chain is None:
        raise CheckpointError(f"chain {cp.chain!r} is not declared")
    key = chain.key(cp.kid)
    if key is None:
        raise CheckpointError(f"key {cp.kid!r} may not sign chain {cp.chain!r}")
    if not key.valid_at(cp.when()):
        raise CheckpointError(f"key {cp.kid!r} is not valid at {cp.at}")
    try:
        key.public.verify(bytes.fromhex(cp.sig), cp.signed_bytes())
    except InvalidSignature as exc:
        raise CheckpointError("the signature does not verify") from exc


def latest(checkpoints: Iterable[Checkpoint]) -> dict[str, Checkpoint]:
    """The checkpoint with the highest seq per chain."""
    out: dict[str, Checkpoint] = {}
    for cp in checkpoints:
        if cp.chain not in out or cp.seq > out[cp.chain].seq:
            out[cp.chain] = cp
    return out


def read_checkpoints(path: Path) -> list[bytes]:
    """The lines of a checkpoint file (JSONL), each without its LF."""
    return Path(path).read_bytes().splitlines()


def write_checkpoints(checkpoints: Iterable[Checkpoint], path: Path) -> int:
    """Write checkpoints as JSONL (one per line, LF-terminated); returns how many."""
    lines = [cp.encode() + b"\n" for cp in checkpoints]
    Path(path).write_bytes(b"".join(lines))
    return len(lines)


class _Producer(Protocol):
    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> Any: ...


# How long a clean stop waits for its final checkpoint: a broker that is gone must not hold the
# stop up (bounded retries could take 30 s); the cadence published the head before.
FINAL_CHECKPOINT_SECONDS = 5.0


class Cadence:
    """When a writer publishes its next checkpoint: every ``seconds``, and at a clean stop."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.seconds

    def done(self) -> None:
        self._last = time.monotonic()


async def publish(producer: _Producer, checkpoint: Checkpoint | None) -> None:
    """Produce ``checkpoint`` to the checkpoint topic, keyed by its chain (None: nothing yet)."""
    if checkpoint is not None:
        await producer.send_and_wait(
            topics.AUDIT_CHECKPOINT.name, value=checkpoint.encode(), key=checkpoint.chain.encode()
        )

"""The record key's partition, as Kafka's Java client and aiokafka choose it, at a fraction of
the CPU.

aiokafka hashes every record key with a pure-Python murmur2 (a dozen big-integer operations per
four bytes of key): profiled in a running router it was 8 % of the process's CPU, more than the
policy decision. :func:`murmur2` is the same function on 32-bit words read at once, and
:class:`KeyPartitioner` remembers the hash of keys it has seen (a person's pseudonym, an audit
chain: the same keys come back). The partition must stay exactly the one the default partitioner
gives: consents and referrals about one person meet on one partition, and a compacted topic
keeps a key's newest record only within its partition (tested against aiokafka's own).
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Sequence

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as ``org.apache.kafka.common.utils.Utils.murmur2`` (unsigned)."""
    length = len(data)
    h = _SEED ^ length
    words = length // 4
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length & 3
    tail = length - rest
    if rest >= 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


@functools.lru_cache(maxsize=65_536)
def _positive_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


class KeyPartitioner:
    """aiokafka's ``DefaultPartitioner``: a key goes to ``murmur2(key) mod partitions`` (the
    Java client's choice), a record without a key to a random available partition."""

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return random.choice(available or all_partitions)  # noqa: S311 - not security
        return all_partitions[_positive_hash(bytes(key)) % len(all_partitions)]

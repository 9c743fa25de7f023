"""Merkle trees for batch signatures: one Ed25519 signature covers many records, and each record
still proves on its own that it was signed.

Why: an Ed25519 signature costs 50-130 µs, more than everything else the router does with a
message once it is tuned. A sender that emits a batch signs the batch's Merkle root once; every
record carries that signature and its inclusion proof (about ``log2(batch)`` hashes), and a
reader that has checked one root signature checks the batch's other records with a few SHA-256
calls.

The tree is the one of RFC 9162 (Certificate Transparency v2), section 2.1, with SHA-256:

- leaf hash: ``SHA-256(0x00 || data)``; interior node: ``SHA-256(0x01 || left || right)``;
- a tree of ``n > 1`` leaves splits at ``k``, the largest power of two smaller than ``n``:
  ``MTH(D[0:n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``;
- an inclusion proof is the audit path of RFC 9162 section 2.1.3.1, verified as in 2.1.3.2.

A proof travels as ``encode_proof``'s bytes: index (4 bytes, big-endian), tree size (4 bytes,
big-endian), then the path's 32-byte hashes, leaf to root. What is signed over a root is the
caller's choice (each use prefixes its own domain label, see :func:`batch_signed_bytes`).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass

HASH_LEN = 32
MAX_SIZE = 1 << 24  # far above any batch; bounds what a proof may claim
_LEAF = b"\x00"
_NODE = b"\x01"


class ProofError(ValueError):
    """A proof that cannot be decoded or does not fit its claimed tree."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The root over leaf hashes (not raw data). One leaf is its own root."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(root_of(leaves[:k]), root_of(leaves[k:]))


def _paths(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root and every leaf's audit path, in one pass (O(n log n) hashes at most)."""
    if len(leaves) == 1:
        return leaves[0], [[]]
    k = _split(len(leaves))
    left_root, left_paths = _paths(leaves[:k])
    right_root, right_paths = _paths(leaves[k:])
    for p in left_paths:
        p.append(right_root)
    for p in right_paths:
        p.append(left_root)
    return _node(left_root, right_root), left_paths + right_paths


@dataclass(frozen=True)
class Proof:
    """Where one leaf sits in a tree of ``size`` leaves, and its audit path (leaf to root)."""

    index: int
    size: int
    path: tuple[bytes, ...]


def build(leaves: Sequence[bytes]) -> tuple[bytes, list[Proof]]:
    """The root over ``leaves`` (leaf hashes) and one proof per leaf, in order."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) > MAX_SIZE:
        raise ValueError(f"a batch may hold at most {MAX_SIZE} records")
    root, paths = _paths(leaves)
    n = len(leaves)
    return root, [Proof(i, n, tuple(p)) for i, p in enumerate(paths)]


def root_from_proof(leaf: bytes, proof: Proof) -> bytes:
    """The root that ``leaf`` and ``proof`` imply (RFC 9162 2.1.3.2); ``ProofError`` when the
    path's length does not fit the index and size."""
    if not 0 <= proof.index < proof.size <= MAX_SIZE:
        raise ProofError("proof index is outside its tree")
    fn, sn = proof.index, proof.size - 1
    r = leaf
    for p in proof.path:
        if sn == 0:
            raise ProofError("proof path is longer than its tree")
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof path is shorter than its tree")
    return r


def encode_proof(proof: Proof) -> bytes:
    return struct.pack(">II", proof.index, proof.size) + b"".join(proof.path)


def decode_proof(raw: bytes) -> Proof:
    if len(raw) < 8 or (len(raw) - 8) % HASH_LEN:
        raise ProofError("proof must be 8 bytes then whole 32-byte hashes")
    index, size = struct.unpack(">II", raw[:8])
    body = raw[8:]
    path = tuple(body[i : i + HASH_LEN] for i in range(0, len(body), HASH_LEN))
    proof = Proof(index, size, path)
    if not 0 <= index < size <= MAX_SIZE:
        raise ProofError("proof index is outside its tree")
    return proof


def batch_signed_bytes(domain: bytes, root: bytes, size: int) -> bytes:
    """What a batch signature signs: a domain label (each use its own, so a signature can
    never be taken for another kind), the tree size (4 bytes, big-endian) and the root."""
    return domain + struct.pack(">I", size) + root

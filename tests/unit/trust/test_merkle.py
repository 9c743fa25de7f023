"""Merkle batch proofs: every leaf proves its root, nothing else does."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.trust import merkle


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"record {i}".encode()) for i in range(n)]


def _reference_root(data_hashes: list[bytes]) -> bytes:
    """RFC 9162's MTH written independently: split at the largest power of two below n."""
    if len(data_hashes) == 1:
        return data_hashes[0]
    k = 1
    while k * 2 < len(data_hashes):
        k *= 2
    left, right = _reference_root(data_hashes[:k]), _reference_root(data_hashes[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


def test_leaf_hash_is_domain_separated() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 9, 31, 64, 100, 500])
def test_every_leaf_proves_the_root(n: int) -> None:
    leaves = _leaves(n)
    root, proofs = merkle.build(leaves)
    assert root == _reference_root(leaves)
    for leaf, proof in zip(leaves, proofs, strict=True):
        decoded = merkle.decode_proof(merkle.encode_proof(proof))
        assert merkle.root_from_proof(leaf, decoded) == root


@given(st.integers(min_value=2, max_value=80), st.data())
def test_a_proof_does_not_fit_another_leaf_or_position(n: int, data: st.DataObject) -> None:
    leaves = _leaves(n)
    root, proofs = merkle.build(leaves)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
    assert merkle.root_from_proof(leaves[j], proofs[i]) != root
    moved = merkle.Proof(j, proofs[i].size, proofs[i].path)
    with contextlib.suppress(merkle.ProofError):  # a position its path cannot fit
        assert merkle.root_from_proof(leaves[i], moved) != root


def test_wrong_path_length_is_a_proof_error() -> None:
    leaves = _leaves(8)
    _, proofs = merkle.build(leaves)
    p = proofs[3]
    with pytest.raises(merkle.ProofError):
        merkle.root_from_proof(leaves[3], merkle.Proof(p.index, p.size, p.path[:-1]))
    with pytest.raises(merkle.ProofError):
        merkle.root_from_proof(leaves[3], merkle.Proof(p.index, p.size, (*p.path, p.path[0])))


BAD_PROOFS = [b"", b"\x00" * 7, b"\x00" * 9, b"\x00\x00\x00\x05\x00\x00\x00\x05"]


@pytest.mark.parametrize("raw", BAD_PROOFS)
def test_malformed_proofs_are_refused(raw: bytes) -> None:
    with pytest.raises(merkle.ProofError):
        merkle.decode_proof(raw)


def test_batch_signed_bytes_binds_domain_size_and_root() -> None:
    root = merkle.leaf_hash(b"r")
    a = merkle.batch_signed_bytes(b"ketenbus-test-v1", root, 3)
    assert a != merkle.batch_signed_bytes(b"ketenbus-other-v1", root, 3)
    assert a != merkle.batch_signed_bytes(b"ketenbus-test-v1", root, 4)
    assert a.endswith(root)

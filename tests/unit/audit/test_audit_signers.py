"""The foundation of signer binding (docs/audit-format.md): chains declared in the registry,
the export an outside auditor verifies with, signed checkpoints and the key hand-over record.

Forgeries are made with *another valid key* (a registered party's own key), not with garbage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker.apps.deployment import LocalParty, create_local
from broker.audit.chain import AuditChain, ChainError, ChainRecord, resume_chain
from broker.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    latest,
    make_checkpoint,
    read_checkpoints,
    verify_checkpoint,
    write_checkpoints,
)
from broker.audit.keys import KeyLoadError
from broker.audit.rotation import next_key_of, public_key_sha256
from broker.audit.signers import (
    allowed_events,
    dump_signers,
    load_signers,
    signers_from_registry,
)
from broker.trust import (
    AuditChainDecl,
    PartyRegistry,
    RegistryError,
    generate_party_keys,
    load_registry,
    parse_registry,
    registry_entry,
)
from broker.trust.registry import registry_yaml
from schemas.vocab import PartyRole

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PartyRegistry]:
    state = tmp_path_factory.mktemp("signers")
    dep = create_local(
        state,
        [
            LocalParty("zvh-a", "ZVH A", PartyRole.ZVH, "midden-nederland"),
            LocalParty("dashboard", "Dashboard", PartyRole.CAPACITY_DASHBOARD),
        ],
    )
    return state / "registry.yaml", dep.registry


def test_a_local_deployment_declares_one_chain_per_writer(
    deployment: tuple[Path, PartyRegistry],
) -> None:
    path, registry = deployment
    loaded = load_registry(path)
    for party in ("router", "zvh-a", "dashboard"):
        chain = loaded.audit_chain_of(party)
        assert chain is not None and chain.chain == registry.get(party).keys[0].key_id
        assert chain.keys == [k.key_id for k in registry.get(party).keys]
    # the dashboard searches from the web app and from the CLI: a chain each; every writer
    # also has an -erase chain for `ketenbus erase` (docs/erasure.md)
    assert len(loaded.audit_chains) == 4 + 3
    cli = [d.chain for d in loaded.audit_chains_of("dashboard")][1]
    assert cli == registry.get("dashboard").keys[0].key_id + "-cli"
    for party in ("router", "zvh-a", "dashboard"):
        assert registry.get(party).keys[0].key_id + "-erase" in loaded.audit_chains


def test_a_chain_may_only_be_signed_by_its_writers_keys() -> None:
    zvh = registry_entry(generate_party_keys("zvh-a"), role=PartyRole.ZVH, name="ZVH A")
    router = registry_entry(generate_party_keys("router"), role=PartyRole.ROUTER, name="R")
    text = registry_yaml(PartyRegistry([zvh, router]))
    # the ZVH's own (registered, valid) key declared for the router's chain
    kid = zvh.keys[0].key_id
    text += f"audit_chains:\n  - chain: router\n    writer: router\n    keys: [{kid}]\n"
    with pytest.raises(RegistryError) as err:
        parse_registry(text, "registry.yaml")
    problem = str(err.value)
    assert "registry.yaml:" in problem and "not a key of 'router'" in problem
    with pytest.raises(ValueError, match="not a key of 'router'"):
        PartyRegistry([zvh, router], [AuditChainDecl(chain="router", writer="router",
                                                     keys=[zvh.keys[0].key_id])])


def test_a_chain_declared_twice_or_by_no_party_is_refused() -> None:
    router = registry_entry(generate_party_keys("router"), role=PartyRole.ROUTER, name="R")
    kid = router.keys[0].key_id
    text = registry_yaml(PartyRegistry([router]))
    twice = text + (
        f"audit_chains:\n  - {{chain: router, writer: router, keys: [{kid}]}}\n"
        f"  - {{chain: router, writer: router, keys: [{kid}]}}\n"
    )
    with pytest.raises(RegistryError, match="declared twice"):
        parse_registry(twice)
    nobody = text + f"audit_chains:\n  - {{chain: x1, writer: ghost, keys: [{kid}]}}\n"
    with pytest.raises(RegistryError, match="'ghost' is not a party"):
        parse_registry(nobody)


def test_the_export_round_trips_and_needs_no_registry(
    deployment: tuple[Path, PartyRegistry], tmp_path: Path
) -> None:
    path, registry = deployment
    export = tmp_path / "audit-keys.json"
    export.write_text(dump_signers(load_signers(path)), encoding="utf-8")
    data = json.loads(export.read_text(encoding="utf-8"))
    router_chain = _chain(deployment)
    assert data["version"] == 1 and data["chains"][router_chain]["role"] == "router"
    assert all(len(k["public"]) == 64 for c in data["chains"].values() for k in c["keys"])
    loaded = load_signers(export)
    direct = signers_from_registry(registry)
    assert {c: [k.public_hex() for k in s.keys] for c, s in loaded.items()} == {
        c: [k.public_hex() for k in s.keys] for c, s in direct.items()
    }


def test_keys_without_a_chain_binding_are_refused_with_the_way_out(tmp_path: Path) -> None:
    pem_dir = tmp_path / "keys"
    pem_dir.mkdir()
    (pem_dir / "router-1.pem").write_text("x")
    kid_map = tmp_path / "keys.json"
    kid_map.write_text(json.dumps({"router-1": "00" * 32}))
    for unbound in (pem_dir, kid_map):
        with pytest.raises(KeyLoadError, match="ketenbus audit keys"):
            load_signers(unbound)
    bare = tmp_path / "bare.yaml"
    router = registry_entry(generate_party_keys("router"), role=PartyRole.ROUTER, name="R")
    bare.write_text(registry_yaml(PartyRegistry([router])))
    with pytest.raises(KeyLoadError, match="declares no audit chains"):
        load_signers(bare)


def test_each_writer_may_record_only_its_own_kind_of_event() -> None:
    assert "decision-permit" in allowed_events(PartyRole.ROUTER)
    assert allowed_events(PartyRole.ZVH) == {"refusal", "erasure", "key-rotation"}
    assert allowed_events(PartyRole.CAPACITY_DASHBOARD) == {
        "compliance-search",
        "reprocess",  # the console's request, naming the operator (issue 17)
        "sign-in",  # a person through their organisation's identity provider (issue 17)
        "key-rotation",
    }


# --- checkpoints ---------------------------------------------------------------------------------


def _signers(deployment: tuple[Path, PartyRegistry]):  # type: ignore[no-untyped-def]
    return signers_from_registry(deployment[1])


def _chain(deployment: tuple[Path, PartyRegistry]) -> str:
    decl = deployment[1].audit_chain_of("router")
    assert decl is not None
    return decl.chain


def _router_key(deployment: tuple[Path, PartyRegistry]) -> tuple[Ed25519PrivateKey, str]:
    from broker.trust import Keyring

    ring = Keyring.load(deployment[0].parent / "keys", "router")
    return ring.current.signing, ring.current.key_id


def test_a_checkpoint_verifies_under_its_chains_key(
    deployment: tuple[Path, PartyRegistry],
) -> None:
    key, kid = _router_key(deployment)
    cp = make_checkpoint(_chain(deployment), 41, "ab" * 32, key, kid, datetime.now(UTC))
    again = Checkpoint.decode(cp.encode())
    assert again == cp
    verify_checkpoint(again, _signers(deployment))


def test_a_checkpoint_signed_with_another_valid_key_is_never_evidence(
    deployment: tuple[Path, PartyRegistry],
) -> None:
    from broker.trust import Keyring

    zvh = Keyring.load(deployment[0].parent / "keys", "zvh-a").current
    at = datetime.now(UTC)
    forged = make_checkpoint(_chain(deployment), 3, "cd" * 32, zvh.signing, zvh.key_id, at)
    with pytest.raises(CheckpointError, match="may not sign chain"):
        verify_checkpoint(forged, _signers(deployment))
    # the router's kid claimed, the ZVH's key used
    key, kid = _router_key(deployment)
    lying = make_checkpoint(_chain(deployment), 3, "cd" * 32, zvh.signing, kid, datetime.now(UTC))
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(lying, _signers(deployment))
    # a genuine checkpoint with its seq lowered after signing (to hide a cut tail)
    genuine = make_checkpoint(_chain(deployment), 9, "ef" * 32, key, kid, datetime.now(UTC))
    lowered = Checkpoint(genuine.chain, 5, genuine.hash, genuine.at, genuine.kid, genuine.sig)
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_checkpoint(lowered, _signers(deployment))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"at":"x","chain":"router","chain":"r2","hash":"' + b"a" * 64 + b'","kid":"k",'
        b'"seq":1,"sig":"' + b"b" * 128 + b'"}',
        b'{"chain":"router","at":"x","hash":"' + b"a" * 64 + b'","kid":"k","seq":1,"sig":"'
        + b"b" * 128 + b'"}',
        b'{"at":"x","chain":"router","hash":"' + b"a" * 64 + b'","kid":"k","seq":1.0,"sig":"'
        + b"b" * 128 + b'"}',
        b'{"at":"x","chain":"router","hash":"' + b"a" * 64 + b'","kid":"k","seq":-1,"sig":"'
        + b"b" * 128 + b'"}',
        b"[]",
        b"\xff",
    ],
    ids=["duplicate-member", "not-canonical", "float-seq", "negative-seq", "not-object",
         "not-utf8"],
)
def test_a_checkpoint_two_readers_could_read_differently_is_refused(raw: bytes) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.decode(raw)


def test_the_checkpoint_file_keeps_the_latest_per_chain(
    deployment: tuple[Path, PartyRegistry], tmp_path: Path
) -> None:
    key, kid = _router_key(deployment)
    cps = [make_checkpoint(_chain(deployment), s, f"{s:064x}", key, kid, NOW) for s in (3, 9, 5)]
    path = tmp_path / "checkpoints.jsonl"
    assert write_checkpoints(latest(cps).values(), path) == 1
    assert [Checkpoint.decode(r).seq for r in read_checkpoints(path)] == [9]
    assert path.read_bytes().endswith(b"\n")


# --- the key hand-over ---------------------------------------------------------------------------


def test_a_rotation_is_signed_by_the_old_key_and_names_the_new_one() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    chain = AuditChain("router", old, "k-old")
    chain.append({"resourceType": "AuditEvent", "id": "e1"})
    handover = ChainRecord.decode(chain.rotate(new, "k-new"))
    after = ChainRecord.decode(chain.append({"resourceType": "AuditEvent", "id": "e2"}))
    assert handover.kid == "k-old" and after.kid == "k-new" and after.prev == handover.hash
    old.public_key().verify(bytes.fromhex(handover.sig), handover.signed_bytes())
    new.public_key().verify(bytes.fromhex(after.sig), after.signed_bytes())
    assert next_key_of(handover.event) == ("k-new", public_key_sha256(new.public_key()))
    assert next_key_of(after.event) is None


def test_resuming_under_a_newer_key_hands_the_chain_over_first() -> None:
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    first = AuditChain("router", old, "k-old")
    last = first.append({"resourceType": "AuditEvent", "id": "e1"})
    chain, handover = resume_chain("router", {"k-old": old, "k-new": new}, "k-new", last)
    assert len(handover) == 1
    rec = ChainRecord.decode(handover[0])
    assert rec.seq == 1 and rec.kid == "k-old" and next_key_of(rec.event) is not None
    assert ChainRecord.decode(chain.append({"id": "e2"})).kid == "k-new"
    # a restart right after the hand-over continues under the new key, with no second one
    same, none = resume_chain("router", {"k-new": new}, "k-new", handover[0])
    assert none == [] and same.last == (1, rec.hash) and same.key_id == "k-new"
    with pytest.raises(ChainError, match="does not hold"):
        resume_chain("router", {"k-other": Ed25519PrivateKey.generate()}, "k-other", last)


def test_a_checkpoint_of_the_chain_head(deployment: tuple[Path, PartyRegistry]) -> None:
    key, kid = _router_key(deployment)
    chain = AuditChain("router", key, kid)
    assert chain.checkpoint() is None
    raw = chain.append({"resourceType": "AuditEvent", "id": "e1"})
    cp = chain.checkpoint(NOW + timedelta(seconds=1))
    assert cp is not None and (cp.seq, cp.hash) == (0, ChainRecord.decode(raw).hash)

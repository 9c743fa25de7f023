"""The party registry: YAML round trip, look-ups, and errors that name file, line and rule."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from trust_helpers import T0, Chain

from broker.trust import (
    Identifiers,
    Party,
    PartyRegistry,
    RegistryError,
    TrustError,
    UnknownParty,
    dump_registry,
    generate_party_keys,
    load_registry,
    parse_registry,
)
from schemas.topics import outbound
from schemas.vocab.roles import PartyRole

SIG = generate_party_keys("zvh-utrecht").public().signing_public
ENC = generate_party_keys("zvh-utrecht").public().encryption_public


def registry_text(body: str) -> str:
    """A registry file; ``{SIG}``/``{ENC}`` in ``body`` become valid public keys and
    ``{KEY <id>}`` a whole key entry (flow style, on one line)."""
    text = textwrap.dedent(body).lstrip("\n")
    text = re.sub(
        r"\{KEY ([^}]+)\}",
        r"{key_id: \1, signing_public: {SIG}, encryption_public: {ENC}, "
        r"valid_from: 2026-01-01T00:00:00Z}",
        text,
    )
    return text.replace("{SIG}", SIG).replace("{ENC}", ENC)


GOOD = """
version: 1
parties:
  - id: zvh-utrecht
    name: Zorg- en Veiligheidshuis Utrecht
    role: zvh
    region: midden-nederland
    identifiers:
      ura: "12345678"
      municipality: 0344
    keys:
      - key_id: zvh-k1
        signing_public: {SIG}
        encryption_public: {ENC}
        valid_from: 2026-03-02T09:30:00Z
        valid_until: 2027-03-02T09:30:00+01:00
  - id: router
    name: ketenbus router
    role: router
    keys:
      - key_id: router-k1
        signing_public: {SIG}
        encryption_public: {ENC}
        valid_from: 2026-03-02T09:30:00Z
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "parties.yaml"
    path.write_text(registry_text(body))
    return path


def test_load_good_registry(tmp_path: Path) -> None:
    registry = load_registry(write(tmp_path, GOOD))
    zvh = registry.get("zvh-utrecht")
    assert zvh.role is PartyRole.ZVH
    assert zvh.identifiers == Identifiers(ura="12345678", municipality="0344")  # not octal 228
    assert zvh.outbound_topic == outbound("zvh-utrecht").name == "out.zvh-utrecht"
    assert zvh.keys[0].valid_until is not None
    assert zvh.keys[0].valid_until.isoformat() == "2027-03-02T08:30:00+00:00"  # normalised to UTC
    assert [p.id for p in registry.by_role(PartyRole.ROUTER)] == ["router"]
    assert registry.router().id == "router"
    assert len(registry) == 2 and "router" in registry


def test_dump_and_load_round_trip(tmp_path: Path, chain: Chain) -> None:
    path = tmp_path / "out" / "registry.yaml"
    dump_registry(chain.registry, path)
    assert load_registry(path).parties == chain.registry.parties
    dump_registry(load_registry(path), path)  # stable when rewritten
    assert load_registry(path).parties == chain.registry.parties


def test_unknown_party_is_a_trust_error_and_a_key_error(chain: Chain) -> None:
    with pytest.raises(UnknownParty) as info:
        chain.registry.get("nobody")
    assert isinstance(info.value, KeyError) and isinstance(info.value, TrustError)
    assert info.value.reason == "unknown-party"
    assert "nobody" in str(info.value)


def test_registry_refuses_duplicates_in_code(chain: Chain) -> None:
    zvh = chain.registry.get("zvh-utrecht")
    with pytest.raises(ValueError, match="appears twice"):
        PartyRegistry([zvh, zvh])
    clash = zvh.model_copy(update={"id": "zvh-amsterdam"})
    with pytest.raises(ValueError, match="used twice"):
        PartyRegistry([zvh, clash])
    doubled = zvh.model_copy(update={"keys": [*zvh.keys, *zvh.keys]})
    with pytest.raises(ValueError, match="used twice"):
        PartyRegistry([doubled])


def test_router_lookup_needs_exactly_one() -> None:
    with pytest.raises(UnknownParty, match="expected 1"):
        PartyRegistry().router()


def problems_of(tmp_path: Path, body: str) -> list[str]:
    path = write(tmp_path, body)
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    text = str(info.value)
    assert str(path) in text
    return [str(p) for p in info.value.problems]


def lines_of(problems: list[str], path: Path) -> list[tuple[int, str]]:
    out = []
    for problem in problems:
        assert problem.startswith(f"{path}:")
        line = int(problem[len(str(path)) + 1 :].split(":")[0])
        out.append((line, problem))
    return out


BAD_FIELDS = """
version: 1
parties:
  - id: zvh-utrecht
    name: ZVH
    role: zvh-x
    identifiers:
      agb: 1234567
      uzovi: "12345"
    keys:
      - key_id: zvh-k1
        signing_public: not-base64
        encryption_public: {ENC}
        valid_from: 2026-03-02T09:30:00
        colour: blue
"""


def test_field_errors_name_file_line_and_rule(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, BAD_FIELDS)
    found = dict(lines_of(problems, tmp_path / "parties.yaml"))
    assert "role" in found[5] and "'zvh'" in found[5]
    assert "AGB code must be exactly 8 digits" in found[7]
    assert "UZOVI code must be exactly 4 digits" in found[8]
    assert "standard base64 of 32 raw bytes" in found[11]
    assert "timezone" in found[13]
    assert "unknown field 'colour'" in found[14]
    assert all("(party zvh-utrecht)" in p for p in found.values())


@pytest.mark.parametrize(
    ("body", "line", "rule"),
    [
        (
            """
            version: 1
            parties:
              - id: router
                name: a
                role: router
                keys:
                  - {KEY k1}
              - id: router
                name: b
                role: router
                keys:
                  - {KEY k2}
            """,
            8,
            "party id 'router' is not unique (first at line 3)",
        ),
        (
            """
            version: 1
            parties:
              - id: router
                name: a
                role: router
                keys:
                  - {KEY k1}
              - id: fivoor
                name: b
                role: executing-provider
                keys:
                  - {KEY k1}
            """,
            12,
            "key id 'k1' is not unique (first at line 7)",
        ),
        (
            """
            version: 1
            parties:
              - id: router
                name: a
                role: router
                keys:
                  - {KEY k1}
                  - {KEY k1}
            """,
            8,
            "key id 'k1' is not unique (first at line 7)",
        ),
        (
            """
            version: 1
            parties:
              - id: router
                role: router
                keys:
                  - {KEY k1}
            """,
            3,
            "required field 'name' is missing",
        ),
        (
            """
            version: 1
            parties:
              - id: Router
                name: a
                role: router
                keys:
                  - {KEY k1}
            """,
            3,
            "party id 'Router' must be 2-64 lowercase letters",
        ),
        (
            """
            version: 1
            parties:
              - id: router
                name: a
                role: router
                keys:
                  - key_id: k1
                    signing_public: {SIG}
                    encryption_public: {ENC}
                    valid_from: 2026-01-01T00:00:00Z
                    valid_until: 2025-01-01T00:00:00Z
            """,
            7,
            "valid_until must be later than valid_from",
        ),
        (
            """
            version: 1
            parties:
              - id: router
                name: a
                name: b
            """,
            5,
            "duplicate key 'name' (first at line 4)",
        ),
        (
            """
            version: 2
            parties: []
            """,
            1,
            "unsupported registry version 2",
        ),
        (
            """
            version: 1
            parties:
              - id: router
                name: [unclosed
            """,
            5,
            "YAML syntax",
        ),
        (
            """
            version: 1
            base: &base {name: a, role: router}
            parties:
              - <<: *base
                id: router
            """,
            4,
            "merge keys (<<) are not supported",
        ),
        (
            """
            - just
            - a list
            """,
            1,
            "Input should be a valid dictionary",
        ),
        (
            """
            version: 1
            parties:
              - id: dji
                name: DJI
                role: dji
                identifiers: {municipality: "GM0363"}
                keys:
                  - {KEY k1}
            """,
            6,
            "municipality (gemeente) code must be exactly 4 digits",
        ),
    ],
)
def test_each_rule_is_reported_at_its_line(tmp_path: Path, body: str, line: int, rule: str) -> None:
    problems = problems_of(tmp_path, body)
    located = lines_of(problems, tmp_path / "parties.yaml")
    assert any(at == line and rule in text for at, text in located), problems


def test_empty_and_missing_files(tmp_path: Path) -> None:
    assert "empty" in problems_of(tmp_path, "")[0]
    with pytest.raises(RegistryError, match="file not found"):
        load_registry(tmp_path / "nope.yaml")


def test_parse_registry_names_the_source() -> None:
    with pytest.raises(RegistryError) as info:
        parse_registry("version: 1\nparties: 3\n", "config-map:parties")
    assert str(info.value.problems[0]).startswith("config-map:parties:2:")


def test_outbound_topic_can_be_overridden() -> None:
    party = Party(
        id="vws",
        name="VWS",
        role=PartyRole.VWS,
        keys=[
            {  # type: ignore[list-item]
                "key_id": "vws-1",
                "signing_public": SIG,
                "encryption_public": ENC,
                "valid_from": T0,
            }
        ],
        outbound_topic="out.vws-special",
    )
    assert party.outbound_topic == "out.vws-special"

"""Generated documents: vocabularies, flow pages and the AsyncAPI document must equal what the
generators produce (so the committed docs can never be stale), and have the required content."""

from __future__ import annotations

import re
from typing import Any

import yaml

from broker.apps.generate import asyncapi
from broker.apps.generate import flowdocs as docs
from schemas import topics
from schemas.flows.registry import FLOWS
from schemas.vocab import CODE_SYSTEMS, GdprBasis, SecrecyGround, SpecialException
from schemas.vocab.citations import CITATION_LIST_VERSION, CITATIONS


def test_docs_are_up_to_date() -> None:
    stale = [
        str(path.relative_to(docs.ROOT))
        for path, text in docs.generated_files().items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"run `python -m broker.apps.generate.flowdocs`; stale: {stale}"


def test_asyncapi_is_up_to_date() -> None:
    committed = asyncapi.DEFAULT_OUT.read_text(encoding="utf-8")
    assert committed == asyncapi.render(), (
        "run `python -m broker.apps.generate.asyncapi --out docs/asyncapi.yaml`"
    )
    assert asyncapi.main(["--check", "--out", str(asyncapi.DEFAULT_OUT)]) == 0


def test_asyncapi_check_detects_staleness(tmp_path: Any) -> None:
    out = tmp_path / "asyncapi.yaml"
    out.write_text("asyncapi: 3.0.0\n", encoding="utf-8")
    assert asyncapi.main(["--check", "--out", str(out)]) == 1


def test_every_code_is_documented() -> None:
    text = (docs.DOCS / "vocabularies.md").read_text(encoding="utf-8")
    for cs in CODE_SYSTEMS:
        assert f"### {cs.__name__}" in text
        for member in cs:
            assert member.definition and member.definition != member.value, (cs, member)
            assert f"`{member.value}`" in text


def test_the_grounds_vocabularies_are_code_systems() -> None:
    """Issue 16: the AVG art. 6 basis, the art. 9/10 exceptions and the secrecy grounds are
    documented code systems, not codes only the policy knows."""
    assert {GdprBasis, SpecialException, SecrecyGround} <= set(CODE_SYSTEMS)


def test_every_citation_is_documented_with_the_list_version() -> None:
    text = (docs.DOCS / "vocabularies.md").read_text(encoding="utf-8")
    section = text.split("## Legal citations", 1)[1].split("\n## ", 1)[0]
    assert f"**{CITATION_LIST_VERSION}**" in section
    for c in CITATIONS:
        row = next(line for line in section.splitlines() if line.startswith(f"| `{c.id}` |"))
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells[3] == ("yes" if c.legal_title else "no"), c.id
        for e in c.exceptions:
            assert f"`{e.value}`" in cells[4], (c.id, e)
        assert cells[6] == (c.checked or "not checked"), c.id


def test_policy_doc_names_every_unchecked_citation() -> None:
    """docs/policy.md §1a says plainly which entries were not checked against the law's text:
    every unchecked id is in its "Not checked" list, every checked one is not."""
    text = (docs.DOCS / "policy.md").read_text(encoding="utf-8")
    paragraph = text.split("**What was checked, and what was not", 1)[1].split("\n\n", 1)[0]
    checked_part, unchecked_part = paragraph.split("**Not checked**", 1)
    assert f"list version {CITATION_LIST_VERSION}" in text
    for c in CITATIONS:
        if c.checked:
            assert f"`{c.id}`" in checked_part and f"`{c.id}`" not in unchecked_part, c.id
        elif c.kind != "task":
            assert f"`{c.id}`" in unchecked_part, c.id


def test_every_flow_has_a_page_with_fields_mapping_and_example() -> None:
    index = (docs.DOCS / "flows" / "README.md").read_text(encoding="utf-8")
    assert "Correlation of responses" in index and "R4B" in index
    for flow in FLOWS:
        page = (docs.DOCS / "flows" / f"{flow.name}.md").read_text(encoding="utf-8")
        assert f"({flow.name}.md)" in index
        for heading in ("## Fields", "## FHIR mapping", "## Example"):
            assert heading in page
        mapped = {f.strip().split("[")[0] for m in flow.mapping for f in m.field.split(",")}
        fields = set(getattr(flow.model, "model_fields", None) or flow.model.__dataclass_fields__)
        assert fields <= mapped, f"{flow.name}: unmapped {fields - mapped}"


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        out = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for k, v in node.items():
            if k != "examples":
                out += _refs(v)
        return out
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = doc
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_asyncapi_structure() -> None:
    doc = yaml.safe_load(asyncapi.DEFAULT_OUT.read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    for ref in _refs(doc):
        _resolve(doc, ref)  # every $ref resolves
    addresses = {c["address"] for c in doc["channels"].values()}
    for topic in topics.catalogue():
        assert topic.name in addresses
    assert "out.{party}" in addresses
    for cid, channel in doc["channels"].items():
        for param in re.findall(r"{(\w+)}", channel["address"]):
            assert param in channel["parameters"], cid
        assert channel["messages"], cid
    for op in doc["operations"].values():
        assert op["action"] in ("send", "receive")
        cid = op["channel"]["$ref"].split("/")[-1]
        for m in op["messages"]:
            assert m["$ref"].startswith(f"#/channels/{cid}/messages/")
    messages = doc["components"]["messages"]
    for flow in FLOWS:
        msg = messages[asyncapi._message_id(flow)]
        assert msg["payload"]["$ref"].endswith(asyncapi._schema_id(flow))
        assert "sealed envelope" in msg["description"]
        example = msg["examples"][0]
        assert set(example["headers"]) == set(asyncapi.HEADERS)
        assert example["payload"]["entry"][0]["resource"]["eventCoding"]["code"] == flow.event.value
    headers = doc["components"]["schemas"]["EnvelopeHeaders"]["properties"]
    assert set(headers) == {
        "kb-id", "kb-event", "kb-sender", "kb-recipient", "kb-time", "kb-sig-kid", "kb-enc-kid",
        "kb-sig", "kb-sig-proof",
    }  # fmt: skip
    # every header the envelope code writes is described (content-type is the record's own)
    from broker.trust import envelope

    written = {*envelope.HEADER_NAMES, envelope.H_SIG_PROOF} - {envelope.H_CONTENT_TYPE}
    assert set(headers) == written
    required = doc["components"]["schemas"]["EnvelopeHeaders"]["required"]
    assert set(required) == written - {envelope.H_SIG_PROOF}
    assert "pseudonym" in doc["info"]["description"]

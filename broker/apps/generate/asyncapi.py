"""The AsyncAPI 3.0 description of every ketenbus topic and message.

``python -m broker.apps.generate.asyncapi --out docs/asyncapi.yaml`` writes it (``--check`` only
compares).
The document is built directly from the topic catalogue (``schemas.topics``), the flow registry
and the examples, so it is deterministic; the test suite fails when the committed copy is stale.

Operations are written from the point of view of the ketenbus router (the application this
document describes): it *receives* what parties' adapters publish on the inbound and shared
topics and *sends* deliveries (``out.<party>``), audit events, refusals and dead letters.
Adapters do the opposite: a party publishes on ``in.*`` and reads its own ``out.<party>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from broker.apps.generate.examples import example_bundle, examples
from schemas import topics
from schemas.flows.registry import FLOWS, FlowSpec
from schemas.identifiers import PARTY_SYSTEM
from schemas.messaging import PARTY_ENDPOINT, URI_SYSTEM, category_of
from schemas.topics import KeyKind, TopicSpec
from schemas.vocab import DataCategory, EventCode, LegalBasis, PurposeOfUse

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_OUT = ROOT / "docs" / "asyncapi.yaml"
VERSION = "0.1.0"
BINDING = "0.5.0"
CONTENT_TYPE = "application/fhir+json"
HEADERS = {
    "kb-id": "The message id: the UUID of Bundle.identifier (= MessageHeader.id); the "
    "de-duplication key.",
    "kb-event": "The event code (MessageHeader.eventCoding.code), for routing without decrypting.",
    "kb-sender": "Party id of the sender of this record (the signer).",
    "kb-recipient": "Party id of the reader the value is encrypted for (the router on inbound "
    "topics, the party on out.<party>).",
    "kb-time": "When the record was sealed (an ISO 8601 instant).",
    "kb-sig-kid": "Id of the sender's signing key.",
    "kb-enc-kid": "Id of the recipient's encryption key the value is encrypted for.",
    "kb-sig": "The sender's signature over the sealed value and the other kb-* headers (base64); "
    "for a batch-signed record, over the Merkle root of its batch (docs/trust.md).",
}
OPTIONAL_HEADERS = {
    "kb-sig-proof": "Only on a batch-signed record: its Merkle inclusion proof (base64: index and "
    "batch size as 4-byte big-endian integers, then the 32-byte audit path), which with kb-sig "
    "proves this record was signed; one Ed25519 signature covers the whole batch.",
}
ENVELOPE = (
    "On the wire the record value is a **sealed envelope**: the plaintext FHIR message Bundle "
    "described by this message's payload, encrypted for its reader (`kb-recipient`, key "
    "`kb-enc-kid`) and signed by its sender (`kb-sender`, key `kb-sig-kid`, signature "
    "`kb-sig`). The routing metadata travels in the `kb-*` headers, so the router can route, "
    "de-duplicate and refuse without decrypting more than it needs. The record key is the "
    "pseudonym of the person the message is about, in the reader's pseudonym domain, so all "
    "messages about one person stay in order on one partition. The payload schemas below "
    "describe the Bundle after opening the envelope."
)
ROUTER_RECEIVES = (
    topics.KEY_STORE,
    topics.IN_CONSENT,
    topics.IN_REFERRAL,
    topics.IN_ASSESSMENT,
    topics.IN_TRANSITION,
    topics.IN_CLAIM,
    topics.IN_ESCALATION,
    topics.CONSENT,
    topics.CONSENT_SNAPSHOT,
    topics.CAPACITY,
)
ROUTER_SENDS = (
    topics.KEY_STORE,
    topics.CONSENT,
    topics.CONSENT_SNAPSHOT,
    topics.AUDIT,
    topics.AUDIT_CHECKPOINT,
    topics.REJECTED,
    topics.DEAD_LETTER,
    topics.ESCALATION,
)
OUT_PARTY = "party"
PSEUDONYM_KEY = {
    "type": "string",
    "description": "The pseudonym of the person in the reader's pseudonym domain (never the BSN).",
}


def _camel(name: str) -> str:
    parts = name.replace(".", "-").replace("{", "").replace("}", "").split("-")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])


def _message_id(flow: FlowSpec) -> str:
    return _camel(flow.name)


def _schema_id(flow: FlowSpec) -> str:
    return _camel(flow.name)[:1].upper() + _camel(flow.name)[1:] + "Message"


# --- schemas ------------------------------------------------------------------------------------


def _coding(system: str | None = None, codes: list[str] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {
        "system": {"type": "string", "format": "uri"} if system is None else {"const": system},
        "code": {"type": "string"} if codes is None else {"enum": codes},
        "display": {"type": "string"},
    }
    return {"type": "object", "required": ["system", "code"], "properties": props}


def _schemas() -> dict[str, Any]:
    party_endpoint = {"type": "string", "pattern": f"^{PARTY_ENDPOINT}[A-Za-z0-9][A-Za-z0-9._-]*$"}
    uuid_urn = {"type": "string", "pattern": "^urn:uuid:[0-9a-fA-F-]{36}$"}
    schemas: dict[str, Any] = {
        "EnvelopeHeaders": {
            "type": "object",
            "description": "Kafka record headers of a sealed envelope (UTF-8 strings).",
            "required": list(HEADERS),
            "properties": {
                "kb-id": {"type": "string", "format": "uuid", "description": HEADERS["kb-id"]},
                "kb-event": {
                    "type": "string",
                    "enum": [e.value for e in EventCode],
                    "description": HEADERS["kb-event"],
                },
                "kb-sender": {"type": "string", "description": HEADERS["kb-sender"]},
                "kb-recipient": {"type": "string", "description": HEADERS["kb-recipient"]},
                "kb-time": {
                    "type": "string",
                    "format": "date-time",
                    "description": HEADERS["kb-time"],
                },
                "kb-sig-kid": {"type": "string", "description": HEADERS["kb-sig-kid"]},
                "kb-enc-kid": {"type": "string", "description": HEADERS["kb-enc-kid"]},
                "kb-sig": {
                    "type": "string",
                    "contentEncoding": "base64",
                    "description": HEADERS["kb-sig"],
                },
                "kb-sig-proof": {
                    "type": "string",
                    "contentEncoding": "base64",
                    "description": OPTIONAL_HEADERS["kb-sig-proof"],
                },
            },
        },
        "Coding": _coding(),
        "MessageHeader": {
            "type": "object",
            "description": "FHIR R4 MessageHeader, the first entry of every message.",
            "required": ["resourceType", "id", "eventCoding", "source"],
            "properties": {
                "resourceType": {"const": "MessageHeader"},
                "id": {"type": "string", "format": "uuid", "description": "= Bundle.identifier"},
                "eventCoding": _coding(EventCode.default_system(), [e.value for e in EventCode]),
                "destination": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["endpoint"],
                        "properties": {"endpoint": party_endpoint, "receiver": {"type": "object"}},
                    },
                },
                "sender": {"type": "object"},
                "source": {
                    "type": "object",
                    "required": ["endpoint"],
                    "properties": {"endpoint": party_endpoint},
                },
                "focus": {
                    "type": "array",
                    "description": "References (urn:uuid fullUrls) to resources in this Bundle.",
                    "items": {
                        "type": "object",
                        "required": ["reference"],
                        "properties": {"reference": uuid_urn},
                    },
                },
                "response": {
                    "type": "object",
                    "required": ["identifier", "code"],
                    "properties": {
                        "identifier": {
                            "type": "string",
                            "description": "The request's message id (MessageHeader.id = "
                            "Bundle.identifier UUID).",
                        },
                        "code": {"enum": ["ok", "transient-error", "fatal-error"]},
                        "details": {"type": "object"},
                    },
                },
                "extension": {"type": "array"},
            },
        },
        "ContentEntry": {
            "type": "object",
            "description": "A content entry: a FHIR R4 resource labelled with one data category.",
            "required": ["fullUrl", "resource"],
            "properties": {
                "fullUrl": uuid_urn,
                "resource": {
                    "type": "object",
                    "required": ["resourceType", "id", "meta"],
                    "properties": {
                        "resourceType": {"type": "string"},
                        "id": {"type": "string"},
                        "meta": {
                            "type": "object",
                            "required": ["security"],
                            "properties": {
                                "security": {
                                    "type": "array",
                                    "contains": _coding(
                                        DataCategory.default_system(),
                                        [c.value for c in DataCategory],
                                    ),
                                }
                            },
                        },
                    },
                },
            },
        },
        "FhirMessageBundle": {
            "type": "object",
            "description": "A FHIR R4 message Bundle as ketenbus sends it (see "
            "docs/flows/README.md for the messaging rules).",
            "required": ["resourceType", "type", "identifier", "timestamp", "meta", "entry"],
            "properties": {
                "resourceType": {"const": "Bundle"},
                "id": {"type": "string"},
                "type": {"const": "message"},
                "identifier": {
                    "type": "object",
                    "required": ["system", "value"],
                    "properties": {"system": {"const": URI_SYSTEM}, "value": uuid_urn},
                },
                "timestamp": {"type": "string", "format": "date-time"},
                "meta": {
                    "type": "object",
                    "description": "security: the purpose of use and the legal basis.",
                    "properties": {
                        "security": {
                            "type": "array",
                            "minItems": 2,
                            "items": {"$ref": "#/components/schemas/Coding"},
                        }
                    },
                },
                "entry": {
                    "type": "array",
                    "minItems": 1,
                    "items": [
                        {
                            "type": "object",
                            "required": ["fullUrl", "resource"],
                            "properties": {
                                "fullUrl": uuid_urn,
                                "resource": {"$ref": "#/components/schemas/MessageHeader"},
                            },
                        }
                    ],
                    "additionalItems": {"$ref": "#/components/schemas/ContentEntry"},
                },
            },
        },
        "AuditEvent": {
            "type": "object",
            "description": "A FHIR R4 AuditEvent (NEN 7513), hash-chained and signed by the "
            "router; defined by the router's audit module.",
            "required": ["resourceType", "type", "recorded", "agent", "source"],
            "properties": {
                "resourceType": {"const": "AuditEvent"},
                "type": {"$ref": "#/components/schemas/Coding"},
                "recorded": {"type": "string", "format": "date-time"},
                "agent": {"type": "array", "minItems": 1},
                "source": {"type": "object"},
                "entity": {"type": "array"},
                "purposeOfEvent": {"type": "array"},
            },
        },
        "OpaqueRecord": {
            "type": "string",
            "format": "binary",
            "description": "The record value as it was received, unchanged (still encrypted).",
        },
    }
    for flow in FLOWS:
        schemas[_schema_id(flow)] = {
            "description": f"The plaintext FHIR message Bundle of the {flow.name} flow "
            f"(docs/flows/{flow.name}.md).",
            "allOf": [
                {"$ref": "#/components/schemas/FhirMessageBundle"},
                {
                    "type": "object",
                    "properties": {
                        "entry": {
                            "items": [
                                {
                                    "properties": {
                                        "resource": {
                                            "properties": {
                                                "eventCoding": {
                                                    "properties": {
                                                        "code": {"const": flow.event.value}
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            ],
                            "additionalItems": {
                                "properties": {
                                    "resource": {
                                        "properties": {
                                            "resourceType": {"enum": list(flow.resources)}
                                        }
                                    }
                                }
                            },
                        }
                    },
                },
            ],
        }
    return schemas


# --- messages -----------------------------------------------------------------------------------


def _headers_example(bundle: dict[str, Any], sender: str, recipient: str) -> dict[str, str]:
    return {
        "kb-id": bundle["identifier"]["value"].removeprefix("urn:uuid:"),
        "kb-event": bundle["entry"][0]["resource"]["eventCoding"]["code"],
        "kb-sender": sender,
        "kb-recipient": recipient,
        "kb-time": bundle["timestamp"],
        "kb-sig-kid": f"{sender}-sig-1",
        "kb-enc-kid": f"{recipient}-enc-1",
        "kb-sig": "<base64 signature>",
    }


def _category(resource: dict[str, Any]) -> str:
    cat = category_of(resource)
    return cat.value if cat else "-"


def _messages() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for flow in FLOWS:
        ex = next(e for e in examples() if e.flow is flow)
        bundle = example_bundle(ex)
        resources = ", ".join(
            f"{e['resource']['resourceType']} ({_category(e['resource'])})"
            for e in bundle["entry"][1:]
        )
        message: dict[str, Any] = {
            "name": flow.event.value,
            "title": flow.title,
            "summary": f"{flow.event.display}: sent by {flow.sender}, for {flow.receivers}.",
            "description": (
                f"{flow.model.__doc__.strip() if flow.model.__doc__ else ''}\n\n"
                f"Event `{flow.event.value}`; focus `{flow.focus}`; resources (data category): "
                f"{resources}. Typical purpose of use `{flow.purpose.value}`, legal basis "
                f"`{flow.legal_basis.value}`. Fields, codes and the FHIR mapping: "
                f"docs/flows/{flow.name}.md.\n\n{ENVELOPE}"
            ),
            "contentType": CONTENT_TYPE,
            "headers": {"$ref": "#/components/schemas/EnvelopeHeaders"},
            "payload": {"$ref": f"#/components/schemas/{_schema_id(flow)}"},
            "correlationId": {
                "description": "The request's message id the response answers."
                if flow.event is EventCode.RESPONSE
                else "The message id (also in header kb-id).",
                "location": "$message.payload#/entry/0/resource/response/identifier"
                if flow.event is EventCode.RESPONSE
                else "$message.header#/kb-id",
            },
            "bindings": {
                "kafka": {
                    "key": PSEUDONYM_KEY
                    if flow.event is not EventCode.CAPACITY_REPORT
                    else {"type": "string", "description": KeyKind.LOCATION.value},
                    "bindingVersion": BINDING,
                }
            },
            "examples": [
                {
                    "name": ex.name,
                    "summary": ex.description,
                    "headers": _headers_example(bundle, ex.sender, "router"),
                    "payload": bundle,
                }
            ],
        }
        messages[_message_id(flow)] = message
    messages["auditEvent"] = {
        "name": "audit-event",
        "title": "Audit event",
        "summary": "Every routing decision, delivery and refusal, as a FHIR AuditEvent.",
        "contentType": CONTENT_TYPE,
        "payload": {"$ref": "#/components/schemas/AuditEvent"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": KeyKind.CHAIN.value},
                "bindingVersion": BINDING,
            }
        },
    }
    messages["dataKey"] = {
        "name": "data-key",
        "title": "Data key (key store)",
        "summary": "One person's data key wrapped under the key-encryption key of a generation, "
        "or a tombstone (gen 0) after `ketenbus erase`; signed by the router (docs/erasure.md).",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "additionalProperties": False,
            "required": ["at", "dkid", "gen", "kid", "owner", "sig", "wrapped", "writer"],
            "properties": {
                "at": {"type": "string"},
                "dkid": {"type": "string", "pattern": "^pk1\\.[A-Za-z0-9_-]{8,64}\\.[0-9a-f]{16}$"},
                "gen": {"type": "integer", "minimum": 0, "description": "0: a tombstone"},
                "kid": {"type": "string"},
                "owner": {"type": "string", "description": "keyed pseudonym; names no one"},
                "sig": {"type": "string", "description": "base64 Ed25519 signature"},
                "wrapped": {"type": "string", "description": "base64 nonce || AES-256-GCM"},
                "writer": {"type": "string"},
            },
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": KeyKind.DATA_KEY.value},
                "bindingVersion": BINDING,
            }
        },
    }
    messages["auditCheckpoint"] = {
        "name": "audit-checkpoint",
        "title": "Audit checkpoint",
        "summary": "The signed head (seq and hash) of one audit chain, published at a fixed "
        "cadence and at a clean stop: the evidence against a cut-off tail "
        "(docs/audit-format.md).",
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "additionalProperties": False,
            "required": ["at", "chain", "hash", "kid", "seq", "sig"],
            "properties": {
                "at": {"type": "string", "description": "UTC instant, milliseconds, Z."},
                "chain": {"type": "string"},
                "hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                "kid": {"type": "string"},
                "seq": {"type": "integer", "minimum": 0},
                "sig": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
            },
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": KeyKind.CHAIN.value},
                "bindingVersion": BINDING,
            }
        },
    }
    for mid, title, summary in (
        (
            "ladderLog",
            "Ladder log",
            "What changed in the router's escalation ladder and watchdogs (cases routed, "
            "decisions, care starts and ends, escalations and answers: case numbers and party "
            "ids, no person), as a JSON array sealed for the router itself; a restarted router "
            "folds the same state from it (broker/router/ladder_log.py).",
        ),
        (
            "consentSnapshot",
            "Consent view snapshot",
            "A head (partition 0: the consent log position, the offset and SHA-256 of every "
            "chunk) or a chunk (partition 1: per person the router pseudonym and that person's "
            "consents under their data key), sealed for the router and signed by the writing "
            "instance; a starting router loads the newest valid one (docs/consent-snapshot.md).",
        ),
        (
            "refusedRecord",
            "Refused record",
            "A record the router refused (unauthorised, unsigned, no legal basis), unchanged; "
            "the reason travels in headers set by the router.",
        ),
        (
            "deadLetter",
            "Dead letter",
            "Input that could not be parsed or routed, unchanged; the reason travels in "
            "headers set by the component that received it.",
        ),
    ):
        messages[mid] = {
            "name": mid,
            "title": title,
            "summary": summary,
            "contentType": "application/octet-stream",
            "headers": {"$ref": "#/components/schemas/EnvelopeHeaders"},
            "payload": {"$ref": "#/components/schemas/OpaqueRecord"},
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "description": "the constant ladder (one partition: kept in order)"
                        if mid == "ladderLog"
                        else KeyKind.SNAPSHOT.value
                        if mid == "consentSnapshot"
                        else KeyKind.PARTY.value,
                    },
                    "bindingVersion": BINDING,
                }
            },
        }
    return messages


# --- channels and operations ------------------------------------------------------------


def _flows_on(topic: TopicSpec) -> list[FlowSpec]:
    return [f for f in FLOWS if topic.name in f.topics]


def _channel(
    topic: TopicSpec, message_ids: list[str], address: str | None = None
) -> dict[str, Any]:
    wanted = topic.topic_config()  # the catalogue's retention term (docs/retention.md)
    config: dict[str, Any] = {"cleanup.policy": [wanted["cleanup.policy"]]}
    for name in ("retention.ms", "delete.retention.ms"):
        if name in wanted:
            config[name] = int(wanted[name])
    return {
        "address": address or topic.name,
        "title": address or topic.name,
        "description": f"{topic.description}\n\nRecord key: {topic.key.value}.",
        "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in message_ids},
        "bindings": {
            "kafka": {
                "partitions": topic.partitions,
                "topicConfiguration": config,
                "bindingVersion": BINDING,
            }
        },
    }


def _channels_and_operations() -> tuple[dict[str, Any], dict[str, Any]]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def add_ops(cid: str, action: str, message_ids: list[str], summary: str) -> None:
        op_id = ("receive" if action == "receive" else "send") + cid[:1].upper() + cid[1:]
        operations[op_id] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/{cid}/messages/{m}"} for m in message_ids],
        }

    for topic in topics.catalogue():
        cid = _camel(topic.name)
        if topic is topics.AUDIT:
            ids = ["auditEvent"]
        elif topic is topics.AUDIT_CHECKPOINT:
            ids = ["auditCheckpoint"]
        elif topic is topics.KEY_STORE:
            ids = ["dataKey"]
        elif topic is topics.REJECTED:
            ids = ["refusedRecord"]
        elif topic is topics.DEAD_LETTER:
            ids = ["deadLetter"]
        elif topic is topics.ESCALATION:
            ids = ["ladderLog"]
        elif topic is topics.CONSENT_SNAPSHOT:
            ids = ["consentSnapshot"]
        else:
            ids = [_message_id(f) for f in _flows_on(topic)]
        channels[cid] = _channel(topic, ids)
        if topic in ROUTER_RECEIVES:
            add_ops(cid, "receive", ids, f"The router reads {topic.name}.")
        if topic in ROUTER_SENDS:
            add_ops(cid, "send", ids, f"The router writes {topic.name}.")
    sample = topics.outbound("{" + OUT_PARTY + "}")
    out_ids = [_message_id(f) for f in FLOWS]
    out = _channel(sample, out_ids, address=sample.name)
    out["title"] = "out.<party>"
    out["description"] = (
        "One topic per party, e.g. `out.zvh-voorbeeld`: every message delivered to that party "
        "(minimised to what its role may see), sealed for it and signed by the router, and the "
        "responses to its own messages. Only that party may read it (Kafka ACLs).\n\n"
        f"Record key: {sample.key.value}."
    )
    out["parameters"] = {OUT_PARTY: {"description": "The party id (registry), e.g. zvh-voorbeeld."}}
    channels["outParty"] = out
    add_ops("outParty", "send", out_ids, "The router delivers to a party's own topic.")
    return channels, operations


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document (a plain dict)."""
    channels, operations = _channels_and_operations()
    purposes = ", ".join(f"`{p.value}`" for p in PurposeOfUse)
    bases = ", ".join(f"`{b.value}`" for b in LegalBasis)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ketenbus",
            "version": VERSION,
            "description": (
                "Message broker for the Dutch Levensloopaanpak: FHIR R4 messages on Kafka between "
                "Zorg- en Veiligheidshuizen, care providers, municipalities and payers, with "
                "consent and purpose checks and no central database.\n\n"
                f"{ENVELOPE}\n\n"
                "Every payload is a FHIR R4 message Bundle: `type` message, the MessageHeader "
                "first, `Bundle.identifier` = `urn:uuid:<message id>` (the de-duplication key, "
                "equal to MessageHeader.id), the event in `MessageHeader.eventCoding`, parties as "
                f"endpoints `{PARTY_ENDPOINT}<party id>` and identifiers of `{PARTY_SYSTEM}`, "
                f"`Bundle.meta.security` = purpose of use ({purposes}) and legal basis ({bases}), "
                "and every content resource labelled with its data category. Responses "
                "correlate on `MessageHeader.response.identifier` = the request's message id. "
                "See docs/flows/README.md.\n\n"
                "Operations are the router's: it receives on the inbound and shared topics and "
                "sends on `out.<party>`, `audit`, `rejected`, `dead-letter` and `escalation`. "
                "A party's adapter publishes on `in.*` (and `consent`, `capacity`) and reads "
                "its own `out.<party>`."
            ),
            "license": {"name": "EUPL-1.2"},
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "development": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "A local Kafka-protocol broker (e.g. Tansu) for development.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": _schemas(), "messages": _messages()},
    }


class _Dumper(yaml.SafeDumper):
    """YAML without anchors/aliases (shared example dicts would otherwise become aliases)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def render() -> str:
    header = (
        "# Generated by `python -m broker.apps.generate.asyncapi --out docs/asyncapi.yaml`;"
        " do not edit.\n"
    )
    return header + yaml.dump(
        document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the AsyncAPI document.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="exit 1 if --out is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"stale: {args.out}", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

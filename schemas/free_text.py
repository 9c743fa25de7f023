"""Free text carries the data category of what it may contain (issue 16 §4).

A resource's category tag (``meta.security``) says what its *structured* elements are. A free-text
element can hold anything its writer types: a transition's reason may name a diagnosis, an
inclusion decision's reasons the clinical picture. Each free-text element of the flows is
therefore listed here with the category of what it may contain; minimisation
(``broker.policy.minimise``) removes it for a recipient whose role may not get that category,
and the router counts it among the categories a message carries, so the decision judges its
grounds (AVG art. 9/10) like any other category.

Besides the listed elements, every ``note`` (FHIR Annotation: free text by definition, in any
resource) counts as ``clinical``: no flow writes one, so a sender that adds one gets it
delivered only to roles that may get clinical data.

An entry names a resource type, a list (or single) element, optionally the code that selects
an item of it (``Task.output`` items by ``type``), and the element inside the item that is the
text (``None``: the whole item is the text's carrier and goes with it). An item left empty by a
removal is removed too, and so is a list left empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from schemas.vocab.categories import DataCategory


@dataclass(frozen=True, slots=True)
class FreeText:
    """One free-text element of a flow and the category of what it may contain."""

    flow: str  # the EventCode value (documentation and the register)
    field: str  # the flow model's field
    resource: str  # resourceType; "*" for any
    element: str  # the (list) element of the resource that holds the item
    code: str | None  # the item's ``type`` code that selects it; None: every item
    text: tuple[str, ...] | None  # the path in the item to the text; None: the whole item
    category: DataCategory
    why: str


FREE_TEXT: tuple[FreeText, ...] = (
    FreeText(
        "referral",
        "signal",
        "ServiceRequest",
        "reasonCode",
        None,
        ("text",),
        DataCategory.REFERRAL_SIGNAL,
        "the signal only; police facts travel apart (police_facts), clinical detail not at all",
    ),
    FreeText(
        "assessment-outcome",
        "reasons",
        "Task",
        "output",
        "reasons",
        None,
        DataCategory.CLINICAL,
        "the reasons of an inclusion decision describe the person's condition",
    ),
    FreeText(
        "assessment-outcome",
        "alternative_note",
        "Task",
        "output",
        "advised-alternative",
        ("valueCodeableConcept", "text"),
        DataCategory.CLINICAL,
        "details of the advised care name what care the person needs",
    ),
    FreeText(
        "care-transition",
        "reason",
        "Encounter",
        "reasonCode",
        None,
        ("text",),
        DataCategory.CLINICAL,
        "why care scales up or down is the clinical picture",
    ),
    FreeText(
        "escalation",
        "explanation",
        "Task",
        "reasonCode",
        None,
        ("text",),
        DataCategory.PROCESS,
        "what is stuck in the process; the senders' desks write no clinical detail in it",
    ),
    FreeText(
        "claim-response",
        "rejection_note",
        "ClaimResponse",
        "error",
        None,
        ("code", "text"),
        DataCategory.FINANCIAL,
        "why a payer rejects a claim",
    ),
    FreeText(
        "*",
        "note",
        "*",
        "note",
        None,
        None,
        DataCategory.CLINICAL,
        "an Annotation is free text in any resource; no flow writes one",
    ),
)


_ANY = tuple(f for f in FREE_TEXT if f.resource == "*")
_BY_TYPE: dict[str, tuple[FreeText, ...]] = {
    f.resource: tuple(g for g in FREE_TEXT if g.resource in ("*", f.resource))
    for f in FREE_TEXT
    if f.resource != "*"
}


def _rules(resource_type: object) -> tuple[FreeText, ...]:
    """The entries that apply to a resource type (looked up: the router asks per resource)."""
    return _BY_TYPE.get(resource_type, _ANY) if isinstance(resource_type, str) else _ANY


def _codes(item: dict[str, Any]) -> set[str]:
    kind = item.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    if not isinstance(codings, list):
        return set()
    return {c["code"] for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str)}


def _items(resource: dict[str, Any], rule: FreeText) -> Iterator[tuple[int | None, Any]]:
    """(index, item) of the element's items that ``rule`` covers (index None: not a list)."""
    value = resource.get(rule.element)
    items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    for i, item in items:
        if not isinstance(item, dict):
            if rule.text is None and rule.code is None and item is not None:
                yield i, item  # a carrier of text whatever its shape (a hostile ``note``)
            continue
        if rule.code is not None and rule.code not in _codes(item):
            continue
        yield i, item


def _has_text(item: Any, path: tuple[str, ...] | None) -> bool:
    if path is None:
        return True
    value: Any = item
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


def free_text_categories(resource: dict[str, Any]) -> frozenset[DataCategory]:
    """The categories of the free text present in ``resource``."""
    found: set[DataCategory] = set()
    for rule in _rules(resource.get("resourceType")):
        if rule.element in resource and any(
            _has_text(item, rule.text) for _, item in _items(resource, rule)
        ):
            found.add(rule.category)
    return frozenset(found)


def _without(value: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """``value`` without the element at ``path`` (copied along the path only); emptied
    containers on the way are left out."""
    key, rest = path[0], path[1:]
    out = dict(value)
    if not rest:
        out.pop(key, None)
        return out
    inner = out.get(key)
    if isinstance(inner, dict):
        smaller = _without(inner, rest)
        if smaller:
            out[key] = smaller
        else:
            del out[key]
    return out


def strip_free_text(resource: dict[str, Any], allowed: frozenset[DataCategory]) -> dict[str, Any]:
    """``resource`` without the free text of categories outside ``allowed``. The input is not
    modified; what is changed is copied (the rest is shared, as the caller copies later)."""
    out = resource
    for rule in _rules(resource.get("resourceType")):
        if rule.category in allowed or rule.element not in out:
            continue
        value = out[rule.element]
        targets = {i for i, item in _items(out, rule) if _has_text(item, rule.text)}
        if not targets:
            continue
        if out is resource:
            out = dict(resource)
        if not isinstance(value, list):  # a single item
            item = _without(value, rule.text) if isinstance(value, dict) and rule.text else {}
            if item:
                out[rule.element] = item
            else:
                del out[rule.element]
            continue
        kept = []
        for i, item in enumerate(value):
            if i in targets:
                item = _without(item, rule.text) if isinstance(item, dict) and rule.text else {}
                if not item:
                    continue
            kept.append(item)
        if kept:
            out[rule.element] = kept
        else:
            del out[rule.element]
    return out

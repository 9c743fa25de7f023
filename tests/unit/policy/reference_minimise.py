"""Minimisation as it was before the fast walk (commit 50dd001), kept verbatim as the reference
that tests/unit/policy/test_minimise_fast.py compares ``project`` and friends with; only
``DataCategory.from_coding`` is the old linear scan here too. Issue 16 added the free-text
categories (``schemas.free_text``): both implementations call the same two functions."""

# ruff: noqa
# mypy: ignore-errors
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from schemas.free_text import free_text_categories, strip_free_text
from schemas.identifiers import BSN_SYSTEM
from schemas.vocab import DataCategory

CATEGORY_SYSTEM = DataCategory.default_system()
PSEUDONYM_SYSTEM_PREFIX = "https://ketenbus.nl/fhir/NamingSystem/pseudonym"

BUNDLE_ELEMENTS = ("resourceType", "id", "identifier", "type", "timestamp")
META_ELEMENTS = ("security", "profile")
PATIENT_STRUCTURE = ("resourceType", "id")
PATIENT_ELEMENTS: dict[DataCategory, tuple[str, ...]] = {
    DataCategory.IDENTITY: ("identifier", "name", "birthDate", "gender"),
    DataCategory.CONTACT: ("address", "telecom", "contact"),
}
DROPPED_IN_RESOURCES = frozenset({"text", "contained"})
PERSON_RESOURCES = frozenset({"Patient", "RelatedPerson", "Person"})

_MISSING = object()


def _copy(value: Any) -> Any:
    """A deep copy of a JSON tree, several times faster than ``copy.deepcopy`` (no memo: a
    message parsed from JSON has no shared or cyclic parts); other objects go to deepcopy."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list:
        return [_copy(v) for v in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)


class UnknownCategory(ValueError):
    """A data-category tag with a code that is not a :class:`DataCategory`."""


def resource_categories(resource: dict[str, Any]) -> frozenset[DataCategory]:
    """The data categories a resource is tagged with; raises :class:`UnknownCategory`."""
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return frozenset()
    found = set()
    for coding in meta.get("security") or ():
        if isinstance(coding, dict) and coding.get("system") == CATEGORY_SYSTEM:
            try:
                found.add(_ref_from_coding(coding))
            except ValueError as exc:
                raise UnknownCategory(str(exc)) from exc
    return frozenset(found)


def message_categories(bundle: dict[str, Any]) -> frozenset[DataCategory]:
    """The categories present in a message: every entry's tags, plus ``contact`` when a Patient
    carries contact elements. Unknown category codes are ignored here (project drops them)."""
    found: set[DataCategory] = set()
    for resource in _resources(bundle, skip_header=True):
        try:
            found |= resource_categories(resource)
        except UnknownCategory:
            continue
        found |= free_text_categories(resource)
        if resource.get("resourceType") == "Patient" and any(
            k in resource for k in PATIENT_ELEMENTS[DataCategory.CONTACT]
        ):
            found.add(DataCategory.CONTACT)
    return frozenset(found)


def _resources(bundle: dict[str, Any], *, skip_header: bool) -> Iterable[dict[str, Any]]:
    entries = bundle.get("entry") or []
    for i, entry in enumerate(entries):
        if skip_header and i == 0:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield entry["resource"]


def _keep_meta(meta: Any) -> dict[str, Any] | None:
    if not isinstance(meta, dict):
        return None
    out = {k: _copy(meta[k]) for k in META_ELEMENTS if k in meta}
    return out or None


def _ref_keys(entry: dict[str, Any]) -> set[str]:
    """The reference strings that point at an entry: its fullUrl and ``Type/id``."""
    keys: set[str] = set()
    if isinstance(entry.get("fullUrl"), str):
        keys.add(entry["fullUrl"])
    res = entry.get("resource")
    if isinstance(res, dict) and isinstance(res.get("id"), str):
        keys.add(f"{res.get('resourceType')}/{res['id']}")
    return keys


def _points_to(ref: str, targets: set[str]) -> bool:
    if ref in targets:
        return True
    return any(ref.endswith("/" + t) for t in targets if "/" in t and not t.startswith("urn:"))


def _is_person_ref(value: dict[str, Any], person_refs: set[str]) -> bool:
    ref = value.get("reference")
    if isinstance(ref, str):
        if _points_to(ref, person_refs):
            return True
        head = ref.split("/_history/")[0].rstrip("/").split("/")
        if len(head) >= 2 and head[-2] in PERSON_RESOURCES:
            return True
    rtype = value.get("type")
    if isinstance(rtype, str) and rtype in PERSON_RESOURCES:
        return True
    ident = value.get("identifier")
    return isinstance(ident, dict) and ident.get("system") == BSN_SYSTEM


def project(
    bundle: dict[str, Any],
    allowed: frozenset[DataCategory],
    *,
    subject_stub: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The part of ``bundle`` that a recipient allowed ``allowed`` categories may receive."""
    entries = bundle.get("entry") or []
    out: dict[str, Any] = {k: _copy(bundle[k]) for k in BUNDLE_ELEMENTS if k in bundle}
    meta = _keep_meta(bundle.get("meta"))
    if meta:
        out["meta"] = meta
    if not entries or not isinstance(entries[0], dict):
        out["entry"] = []
        return out

    identity_allowed = DataCategory.IDENTITY in allowed
    kept: list[tuple[dict[str, Any], dict[str, Any]]] = []  # (input entry, projected resource)
    dropped_refs: set[str] = set()
    person_refs: set[str] = set()
    for entry in entries[1:]:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        rtype = resource.get("resourceType")
        if isinstance(rtype, str) and rtype in PERSON_RESOURCES:
            person_refs |= _ref_keys(entry)
        try:
            tags = resource_categories(resource)
        except UnknownCategory:
            tags = frozenset()
        if not tags or not tags <= allowed:
            dropped_refs |= _ref_keys(entry)
            continue
        if rtype == "Patient":
            projected = _project_patient(resource, allowed)
        else:  # no copy: the reference rewrite below builds every container anew
            projected = strip_free_text(
                {k: v for k, v in resource.items() if k not in DROPPED_IN_RESOURCES}, allowed
            )
        kept.append((entry, projected))

    header_entry = entries[0]
    header = header_entry.get("resource") if isinstance(header_entry, dict) else None
    out_header: dict[str, Any] = _copy(header) if isinstance(header, dict) else {}
    if "focus" in out_header:
        focus = [
            f
            for f in out_header["focus"]
            if not (isinstance(f, dict) and _points_to(str(f.get("reference", "")), dropped_refs))
        ]
        if focus:
            out_header["focus"] = focus
        else:
            del out_header["focus"]
    first: dict[str, Any] = {}
    if isinstance(header_entry, dict) and "fullUrl" in header_entry:
        first["fullUrl"] = header_entry["fullUrl"]
    first["resource"] = out_header

    replace_person = not identity_allowed
    kept_refs = _ref_keys(header_entry) if isinstance(header_entry, dict) else set()
    for entry, _ in kept:
        kept_refs |= _ref_keys(entry)
    rewrite = _RefRewriter(
        dropped_refs,
        kept_refs,
        person_refs if replace_person else set(),
        replace_person,
        subject_stub,
    )
    out_entries = [first]
    for entry, projected in kept:
        cleaned = rewrite(projected)
        new_entry: dict[str, Any] = {}
        if "fullUrl" in entry:
            new_entry["fullUrl"] = entry["fullUrl"]
        new_entry["resource"] = cleaned
        out_entries.append(new_entry)
    out["entry"] = out_entries
    return out


def _project_patient(patient: dict[str, Any], allowed: frozenset[DataCategory]) -> dict[str, Any]:
    out: dict[str, Any] = {k: _copy(patient[k]) for k in PATIENT_STRUCTURE if k in patient}
    meta = _keep_meta(patient.get("meta"))
    if meta:
        out["meta"] = meta
    for category, elements in PATIENT_ELEMENTS.items():
        if category in allowed:
            for k in elements:
                if k in patient:
                    out[k] = _copy(patient[k])
    return out


class _RefRewriter:
    """Rewrite references in a kept resource (see the module documentation).

    Removed: references to dropped entries, and ``urn:`` references that resolve to no kept
    entry (in a message they must resolve inside the Bundle; a dangling one could still link
    messages about one person). Replaced by the stub (or removed): references to the person
    when identity is not allowed. A value that becomes empty by a removal is removed too.
    """

    def __init__(
        self,
        dropped: set[str],
        kept: set[str],
        person_refs: set[str],
        replace_person: bool,
        stub: dict[str, Any] | None,
    ) -> None:
        self.dropped = dropped
        self.kept = kept
        self.person_refs = person_refs
        self.replace_person = replace_person
        self.stub = stub

    def __call__(self, value: Any) -> Any:
        """The rewritten value: new dicts and lists throughout (it shares none with ``value``)."""
        new = self._rewrite(value)
        return {} if new is _MISSING else new

    def _rewrite(self, value: Any) -> Any:
        if isinstance(value, dict):
            if self.replace_person and _is_person_ref(value, self.person_refs):
                return _copy(self.stub) if self.stub is not None else _MISSING
            ref = value.get("reference")
            if isinstance(ref, str) and (
                _points_to(ref, self.dropped) or (ref.startswith("urn:") and ref not in self.kept)
            ):
                return _MISSING
            out = {}
            for k, v in value.items():
                new = self._rewrite(v)
                if new is not _MISSING:
                    out[k] = new
            return out if out or not value else _MISSING
        if isinstance(value, list):
            items = [self._rewrite(v) for v in value]
            kept = [v for v in items if v is not _MISSING]
            return kept if kept or not value else _MISSING
        return value


def contains_personal_data(bundle: dict[str, Any]) -> list[str]:
    """Paths of personal data anywhere in ``bundle`` (used to refuse counts-only messages).

    Found: any Patient, RelatedPerson or Person resource (the path of the resource, which covers
    its name, birth date, address, telecom and contacts); any BSN identifier; any identifier in
    a ketenbus pseudonym system; any reference to a person resource; any ``birthDate``; and any
    HumanName (a value with ``family`` or ``given``, e.g. a Practitioner's name). Names,
    addresses and telecom of organisations and locations are not personal data.
    """
    found: list[str] = []
    _scan(bundle, "", found)
    return found


def _scan(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, list):
        for i, item in enumerate(value):
            _scan(item, f"{path}[{i}]", found)
        return
    if not isinstance(value, dict):
        return
    rtype = value.get("resourceType")
    if isinstance(rtype, str) and rtype in PERSON_RESOURCES:
        found.append(path or "$")
        return
    system = value.get("system")
    if (
        isinstance(system, str)
        and "value" in value
        and (system == BSN_SYSTEM or system.startswith(PSEUDONYM_SYSTEM_PREFIX))
    ):
        found.append(path or "$")
        return
    ref = value.get("reference")
    if isinstance(ref, str) and _is_person_ref({"reference": ref}, set()):
        found.append(path or "$")
        return
    if "family" in value or "given" in value:
        found.append(path or "$")
        return
    for k, v in value.items():
        sub = f"{path}.{k}" if path else k
        if k == "birthDate":
            found.append(sub)
            continue
        _scan(v, sub, found)


def _ref_from_coding(coding: dict[str, Any]) -> DataCategory:
    system, code = coding.get("system"), coding.get("code")
    for member in DataCategory:
        if member.value == code and member.system == system:
            return member
    raise ValueError(f"code {code!r} of system {system!r} is not a DataCategory")

"""The consent view: every consent's latest version, per person pseudonym, in memory.

There is no database. Each router instance rebuilds this view by applying every record of the
``consent`` topic from the beginning (:meth:`ConsentView.apply`), then keeps applying new ones.

Rules
-----
* A consent is identified by ``(pseudonym, consent_id)``; ``consent_id`` is stable across its
  versions. The version with the latest ``recorded_at`` wins, whatever order versions arrive in,
  so an older version arriving late never overrides a newer one (``ignored-older-version``).
  Re-applying the version already held is ``unchanged``. Two *different* versions with the same
  ``recorded_at`` are resolved deterministically: a revocation wins over an active version, and
  otherwise the version whose canonical JSON sorts last wins. The final state therefore does not
  depend on the order of application (the view is a CRDT-style last-writer-wins register).
* A revocation (status ``inactive``) is kept as a tombstone, so a late older ``active`` version of
  a revoked consent cannot bring it back. Revocation takes effect for every decision made after
  ``apply`` returns.
* Only records with legal basis ``consent`` are consents for :meth:`find` and :meth:`lookup`
  (a record with another legal basis is a register entry and is held but never matches).
* Only consents in force on the decision date count: active, on or after ``period_start`` and on
  or before ``period_end``. Expired consents stay in the view (a newer version could extend
  them) but never match.

Memory
------
Each version is packed into one ``bytes`` object (a 35-byte header plus the consent id) and
values that repeat across consents (recipient lists, who recorded it, the grantor) are interned
in small tables. One consent costs about 145 bytes of allocations (165-210 bytes of RSS)
including its share of the per-person dictionary entry (``ketenbus bench --only consents``).
The BSN is kept (as a 4-byte integer) only so that :meth:`find` can return a full
:class:`~schemas.flows.consent.ConsentRecord`.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor
from schemas.vocab import DataCategory, LegalBasis, PartyRole, PurposeOfUse

T = TypeVar("T")
# grantor, representative, recorded_by, basis, the data holders (empty: recorded_by), the case
_Cold = tuple[Grantor, str | None, str, LegalBasis, tuple[str, ...], str | None]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OPEN_END = date.max.toordinal()

# recorded_us, start, end, purposes, roles, categories, bsn, recipients idx, cold idx, flags
_HEADER = struct.Struct("<qIIHHHIIIB")
_HEADER_SIZE = _HEADER.size
_ACTIVE = 1  # flag: the latest version is active
_CONSENT_BASIS = 2  # flag: legal_basis is consent (other register entries never match a lookup)

_PURPOSES: tuple[PurposeOfUse, ...] = tuple(PurposeOfUse)
_ROLES: tuple[PartyRole, ...] = tuple(PartyRole)
_CATEGORIES: tuple[DataCategory, ...] = tuple(DataCategory)
_PURPOSE_BIT = {p: 1 << i for i, p in enumerate(_PURPOSES)}
_ROLE_BIT = {r: 1 << i for i, r in enumerate(_ROLES)}
_CATEGORY_BIT = {c: 1 << i for i, c in enumerate(_CATEGORIES)}
assert len(_PURPOSES) <= 16 and len(_ROLES) <= 16 and len(_CATEGORIES) <= 16


class ConsentChangeKind(StrEnum):
    GRANTED = "granted"
    UPDATED = "updated"
    REVOKED = "revoked"
    IGNORED_OLDER_VERSION = "ignored-older-version"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """What :meth:`ConsentView.apply` did with one consent version."""

    kind: ConsentChangeKind
    pseudonym: str
    consent_id: str
    recorded_at: datetime
    previous_recorded_at: datetime | None = None

    @property
    def changed(self) -> bool:
        return self.kind in (
            ConsentChangeKind.GRANTED,
            ConsentChangeKind.UPDATED,
            ConsentChangeKind.REVOKED,
        )


@dataclass(frozen=True, slots=True)
class ConsentMatch:
    """A consent in force that covers a recipient and purpose (its categories may fall short)."""

    consent_id: str
    categories: frozenset[DataCategory]
    recorded_us: int  # recorded_at as microseconds since the Unix epoch (UTC)
    period_end: date | None

    @property
    def recorded_at(self) -> datetime:
        return _from_us(self.recorded_us)


@dataclass(frozen=True, slots=True)
class ConsentLookup:
    """All consents of one person for one recipient and purpose, classified for a decision.

    ``in_force`` is ordered newest first (ties: greatest consent id first). The counters
    explain a refusal: consents that would match but are revoked, expired or not yet in force,
    and consents for this recipient that do not name this purpose.
    """

    in_force: tuple[ConsentMatch, ...] = ()
    revoked: int = 0
    expired: int = 0
    not_yet_valid: int = 0
    other_purpose: int = 0
    other_recipient: int = 0
    other_holder: int = 0  # consents for this recipient and purpose, for data another holds
    other_case: int = 0  # ... limited to another case


def _mask(bits: dict[PurposeOfUse, int] | dict[PartyRole, int] | dict[DataCategory, int],
          values: Sequence[object]) -> int:
    m = 0
    for v in values:
        m |= bits[v]  # type: ignore[index]
    return m


@functools.cache  # at most 2^16 masks
def _categories(mask: int) -> frozenset[DataCategory]:
    return frozenset(c for c in _CATEGORIES if mask & _CATEGORY_BIT[c])


def category_mask(categories: set[DataCategory] | frozenset[DataCategory]) -> int:
    return _mask(_CATEGORY_BIT, tuple(categories))


def _to_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class _Interned(Generic[T]):
    """A small append-only table: value <-> index."""

    __slots__ = ("index", "values")

    def __init__(self) -> None:
        self.values: list[T] = []
        self.index: dict[T, int] = {}

    def put(self, value: T) -> int:
        i = self.index.get(value)
        if i is None:
            i = len(self.values)
            self.values.append(value)
            self.index[value] = i
        return i


_LEN = struct.Struct("<H")
_NONE_LEN = 0xFFFF  # a length that stands for None (the texts are far shorter)
# grantor, recorded_by, basis, the data holders: what versions share, no person in it
_Shared = tuple[str, str, str, tuple[str, ...]]


class SnapshotTables:
    """What the versions of many persons share in a snapshot chunk (recipient lists and who
    recorded on which basis: party ids and codes, no personal data), so each person's part
    holds only indices into them beside what is theirs (BSN, dates, a representative's name, a
    case id), which the snapshot encrypts under that person's data key
    (``broker.router.consent_snapshot``)."""

    __slots__ = ("recipients", "shared")

    def __init__(self) -> None:
        self.recipients: _Interned[tuple[str, ...]] = _Interned()
        self.shared: _Interned[_Shared] = _Interned()

    def to_json(self) -> dict[str, list[object]]:
        return {
            "recipients": [list(r) for r in self.recipients.values],
            "shared": [[g, by, basis, list(h)] for g, by, basis, h in self.shared.values],
        }

    @classmethod
    def from_json(cls, doc: object) -> SnapshotTables:
        """The tables of a chunk; ``ValueError`` for anything not shaped as :meth:`to_json`."""
        if not isinstance(doc, dict) or set(doc) != {"recipients", "shared"}:
            raise ValueError("snapshot tables: fields")
        tables = cls()
        for r in doc["recipients"]:
            tables.recipients.put(_strings(r))
        for item in doc["shared"]:
            if not isinstance(item, list) or len(item) != 4:
                raise ValueError("snapshot tables: a shared entry")
            g, by, basis, holders = item
            Grantor(g), LegalBasis(basis)
            tables.shared.put((_string(g), _string(by), _string(basis), _strings(holders)))
        return tables


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("snapshot tables: not a string")
    return value


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("snapshot tables: not a list")
    return tuple(_string(v) for v in value)


def _put_text(out: bytearray, text: str | None) -> None:
    raw = b"" if text is None else text.encode()
    out += _LEN.pack(_NONE_LEN if text is None else len(raw))
    out += raw


def _take_text(blob: bytes, at: int) -> tuple[str | None, int]:
    (n,) = _LEN.unpack_from(blob, at)
    at += _LEN.size
    if n == _NONE_LEN:
        return None, at
    if at + n > len(blob):
        raise ValueError("snapshot entry: cut short")
    return blob[at : at + n].decode(), at + n


class ConsentView:
    """Latest version of every consent per person pseudonym, built only from the consent topic."""

    __slots__ = ("_active", "_by_person", "_cold", "_count", "_recipients")

    def __init__(self) -> None:
        # pseudonym -> one packed version, or a tuple of them (one per consent id)
        self._by_person: dict[str, bytes | tuple[bytes, ...]] = {}
        self._recipients: _Interned[tuple[str, ...]] = _Interned()  # recipient party ids
        self._cold: _Interned[_Cold] = _Interned()  # grantor, representative, recorded_by, basis
        self._count = 0
        self._active = 0

    # -- size -------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of distinct consents held (revoked ones included, as tombstones)."""
        return self._count

    @property
    def active_count(self) -> int:
        """Number of consents whose latest version is active (in force or not)."""
        return self._active

    @property
    def persons(self) -> int:
        return len(self._by_person)

    # -- writing ----------------------------------------------------------------------------

    def apply(self, pseudonym: str, record: ConsentRecord) -> ConsentChange:
        """Apply one consent version; idempotent and tolerant of any arrival order."""
        packed = self._pack(record)
        cid = record.consent_id.encode()
        slot = self._by_person.get(pseudonym)
        versions: tuple[bytes, ...] = () if slot is None else (
            (slot,) if isinstance(slot, bytes) else slot
        )
        for i, old in enumerate(versions):
            if old[_HEADER_SIZE:] != cid:
                continue
            previous_at = _from_us(_HEADER.unpack_from(old)[0])
            if old == packed:
                return self._change(ConsentChangeKind.UNCHANGED, pseudonym, record, previous_at)
            if not self._newer(packed, old):
                return self._change(
                    ConsentChangeKind.IGNORED_OLDER_VERSION, pseudonym, record, previous_at
                )
            was_active = bool(old[_HEADER_SIZE - 1] & _ACTIVE)
            is_active = record.status is ConsentStatus.ACTIVE
            self._active += int(is_active) - int(was_active)
            self._store(pseudonym, (*versions[:i], packed, *versions[i + 1 :]))
            if not is_active:
                kind = ConsentChangeKind.REVOKED
            elif was_active:
                kind = ConsentChangeKind.UPDATED
            else:
                kind = ConsentChangeKind.GRANTED
            return self._change(kind, pseudonym, record, previous_at)
        self._store(pseudonym, (*versions, packed))
        self._count += 1
        if record.status is ConsentStatus.ACTIVE:
            self._active += 1
            return self._change(ConsentChangeKind.GRANTED, pseudonym, record, None)
        return self._change(ConsentChangeKind.REVOKED, pseudonym, record, None)

    def forget(self, pseudonym: str) -> int:
        """Drop every consent of this person, revoked ones included: the person was erased
        (AVG art. 17; the consent records are the person's data too, ``docs/erasure.md``), so the
        view must not keep them to be written back after a broker restart. Returns how many."""
        versions = self._versions(pseudonym)
        self._by_person.pop(pseudonym, None)
        self._count -= len(versions)
        self._active -= sum(1 for v in versions if v[_HEADER_SIZE - 1] & _ACTIVE)
        return len(versions)

    # -- snapshots (broker.router.consent_snapshot) ------------------------------------------

    def export_person(self, pseudonym: str, tables: SnapshotTables) -> bytes:
        """Every version held for this person as bytes, shared values as indices into
        ``tables``; empty when the view holds nothing for them. The counterpart of
        :meth:`restore_person`."""
        out = bytearray()
        versions = self._versions(pseudonym)
        for v in versions:
            fields = list(_HEADER.unpack_from(v))
            grantor, rep, by, basis, holders, case = self._cold.values[fields[8]]
            fields[7] = tables.recipients.put(self._recipients.values[fields[7]])
            fields[8] = tables.shared.put((grantor.value, by, basis.value, holders))
            packed = _HEADER.pack(*fields) + v[_HEADER_SIZE:]
            out += _LEN.pack(len(packed))
            out += packed
            _put_text(out, rep)
            _put_text(out, case)
        return bytes(out)

    def restore_person(self, pseudonym: str, blob: bytes, tables: SnapshotTables) -> int:
        """Put back what :meth:`export_person` wrote; returns the versions restored. Into a
        person already held, each version goes through :meth:`apply` (the newest wins, as
        always); ``ValueError`` for bytes that are not an export (nothing is stored then)."""
        versions: list[bytes] = []
        at = 0
        try:
            while at < len(blob):
                (n,) = _LEN.unpack_from(blob, at)
                at += _LEN.size
                if n < _HEADER_SIZE + 1 or at + n > len(blob):
                    raise ValueError("snapshot entry: a version cut short")
                fields = list(_HEADER.unpack_from(blob, at))
                cid = blob[at + _HEADER_SIZE : at + n]
                cid.decode()
                at += n
                rep, at = _take_text(blob, at)
                case, at = _take_text(blob, at)
                grantor, by, basis, holders = tables.shared.values[fields[8]]
                fields[7] = self._recipients.put(tables.recipients.values[fields[7]])
                fields[8] = self._cold.put(
                    (Grantor(grantor), rep, by, LegalBasis(basis), holders, case)
                )
                versions.append(_HEADER.pack(*fields) + cid)
        except (struct.error, IndexError, UnicodeDecodeError) as err:
            raise ValueError(f"snapshot entry: {type(err).__name__}") from None
        if not versions:
            return 0
        if pseudonym in self._by_person:
            for v in versions:
                self.apply(pseudonym, self._unpack(v))
            return len(versions)
        self._store(pseudonym, tuple(versions))
        self._count += len(versions)
        self._active += sum(1 for v in versions if v[_HEADER_SIZE - 1] & _ACTIVE)
        return len(versions)

    def person_bsn(self, pseudonym: str) -> str | None:
        """The BSN of a person held (from the packed header), None when not held."""
        versions = self._versions(pseudonym)
        return f"{_HEADER.unpack_from(versions[0])[6]:09d}" if versions else None

    def count_of(self, pseudonym: str) -> int:
        """How many consents of this person the view holds (revoked ones included)."""
        return len(self._versions(pseudonym))

    def pseudonyms(self) -> list[str]:
        """Every person held, by pseudonym (a copy: the view may change while it is used)."""
        return list(self._by_person)

    @staticmethod
    def _change(
        kind: ConsentChangeKind, pseudonym: str, record: ConsentRecord, previous: datetime | None
    ) -> ConsentChange:
        return ConsentChange(kind, pseudonym, record.consent_id, record.recorded_at, previous)

    def _store(self, pseudonym: str, versions: tuple[bytes, ...]) -> None:
        self._by_person[pseudonym] = versions[0] if len(versions) == 1 else versions

    def _newer(self, candidate: bytes, held: bytes) -> bool:
        """Whether ``candidate`` beats ``held`` (same consent id, different content)."""
        c_at, h_at = _HEADER.unpack_from(candidate)[0], _HEADER.unpack_from(held)[0]
        if c_at != h_at:
            return bool(c_at > h_at)
        c_active = candidate[_HEADER_SIZE - 1] & _ACTIVE
        h_active = held[_HEADER_SIZE - 1] & _ACTIVE
        if c_active != h_active:
            return not c_active  # a revocation wins a tie
        return self._unpack(candidate).model_dump_json() > self._unpack(held).model_dump_json()

    def _pack(self, r: ConsentRecord) -> bytes:
        recipients = self._recipients.put(tuple(sorted(set(r.recipients))))
        cold = self._cold.put(
            (
                r.grantor,
                r.representative_name,
                r.recorded_by,
                r.legal_basis,
                tuple(dict.fromkeys(r.data_holders)),
                r.case_id,
            )
        )
        return _HEADER.pack(
            _to_us(r.recorded_at),
            r.period_start.toordinal(),
            r.period_end.toordinal() if r.period_end is not None else _OPEN_END,
            _mask(_PURPOSE_BIT, r.purposes),
            _mask(_ROLE_BIT, r.recipient_roles),
            _mask(_CATEGORY_BIT, r.categories),
            int(r.person_bsn),
            recipients,
            cold,
            (_ACTIVE if r.status is ConsentStatus.ACTIVE else 0)
            | (_CONSENT_BASIS if r.legal_basis is LegalBasis.CONSENT else 0),
        ) + r.consent_id.encode()

    def _unpack(self, packed: bytes) -> ConsentRecord:
        (at, start, end, purposes, roles, cats, bsn, rec_i, cold_i, flags) = _HEADER.unpack_from(
            packed
        )
        grantor, rep_name, recorded_by, basis, holders, case = self._cold.values[cold_i]
        recipients = self._recipients.values[rec_i]
        return ConsentRecord.model_construct(
            consent_id=packed[_HEADER_SIZE:].decode(),
            person_bsn=f"{bsn:09d}",
            status=ConsentStatus.ACTIVE if flags & _ACTIVE else ConsentStatus.INACTIVE,
            grantor=grantor,
            representative_name=rep_name,
            recipients=recipients,
            recipient_roles=tuple(r for r in _ROLES if roles & _ROLE_BIT[r]),
            purposes=tuple(p for p in _PURPOSES if purposes & _PURPOSE_BIT[p]),
            categories=tuple(c for c in _CATEGORIES if cats & _CATEGORY_BIT[c]),
            period_start=date.fromordinal(start),
            period_end=None if end == _OPEN_END else date.fromordinal(end),
            recorded_at=_from_us(at),
            recorded_by=recorded_by,
            legal_basis=basis,
            holders=() if holders == (recorded_by,) else holders,
            case_id=case,
        )

    # -- reading ----------------------------------------------------------------------------

    def _versions(self, pseudonym: str) -> tuple[bytes, ...]:
        slot = self._by_person.get(pseudonym)
        if slot is None:
            return ()
        return (slot,) if isinstance(slot, bytes) else slot

    def person_bsns(self) -> Iterator[tuple[str, str]]:
        """Every person in the view as ``(pseudonym, BSN)``, read from the packed header only
        (an erasure looks for its person among all: ``RouterService._forget_erased``)."""
        for pseudonym in list(self._by_person):
            versions = self._versions(pseudonym)
            if versions:
                yield pseudonym, f"{_HEADER.unpack_from(versions[0])[6]:09d}"

    def records(self, pseudonym: str) -> list[ConsentRecord]:
        """The latest version of every consent of this person (revoked ones included)."""
        return [self._unpack(v) for v in self._versions(pseudonym)]

    def __iter__(self) -> Iterator[tuple[str, ConsentRecord]]:
        for pseudonym in list(self._by_person):
            for v in self._versions(pseudonym):
                yield pseudonym, self._unpack(v)

    def lookup(
        self,
        pseudonym: str,
        *,
        recipient: str,
        role: PartyRole,
        purpose: PurposeOfUse,
        on: date,
        holder: str | None = None,
        case: str | None = None,
    ) -> ConsentLookup:
        """Consents of this person for this recipient and purpose, classified (see class).

        ``holder`` is the organisation disclosing (the sender): a consent covers only the data
        its holders hold (Mitz's model: whose data, held by whom, to which kind of recipient,
        for which purpose). ``case``: the message's ZVH case; a consent limited to a case covers
        only that case."""
        versions = self._versions(pseudonym)
        if not versions:
            return _EMPTY_LOOKUP
        day = on.toordinal()
        role_bit = _ROLE_BIT[role]
        purpose_bit = _PURPOSE_BIT[purpose]
        recipient_lists = self._recipients.values
        found: list[tuple[int, str, ConsentMatch]] = []
        revoked = expired = not_yet = other_purpose = other_recipient = other_holder = 0
        other_case = 0
        colds = self._cold.values
        for v in versions:
            at, start, end, purposes, roles, cats, _bsn, rec_i, c_i, flags = _HEADER.unpack_from(v)
            if not flags & _CONSENT_BASIS:
                continue
            if not (roles & role_bit or recipient in recipient_lists[rec_i]):
                other_recipient += 1
                continue
            if not purposes & purpose_bit:
                other_purpose += 1
                continue
            cold = colds[c_i]
            if holder is not None and holder not in cold[4]:
                other_holder += 1
                continue
            if cold[5] is not None and case != cold[5]:
                other_case += 1
                continue
            if not flags & _ACTIVE:
                revoked += 1
            elif day < start:
                not_yet += 1
            elif day > end:
                expired += 1
            else:
                match = ConsentMatch(
                    v[_HEADER_SIZE:].decode(),
                    _categories(cats),
                    at,
                    None if end == _OPEN_END else date.fromordinal(end),
                )
                found.append((at, match.consent_id, match))
        found.sort(key=lambda f: (f[0], f[1]), reverse=True)
        return ConsentLookup(
            tuple(f[2] for f in found),
            revoked,
            expired,
            not_yet,
            other_purpose,
            other_recipient,
            other_holder,
            other_case,
        )

    def find(
        self,
        pseudonym: str,
        *,
        recipient: str,
        role: PartyRole,
        purpose: PurposeOfUse,
        categories: set[DataCategory] | frozenset[DataCategory],
        on: date,
        holder: str | None = None,
        case: str | None = None,
    ) -> ConsentRecord | None:
        """The newest consent in force on ``on`` that covers the recipient (by id or role), the
        purpose and *all* of ``categories``; ``None`` when there is none. Ties on
        ``recorded_at`` go to the greatest ``consent_id``. Code lists in the returned record are
        in canonical (enum) order, without duplicates."""
        wanted = category_mask(set(categories))
        best: tuple[int, bytes] | None = None
        day = on.toordinal()
        role_bit = _ROLE_BIT[role]
        purpose_bit = _PURPOSE_BIT[purpose]
        for v in self._versions(pseudonym):
            at, start, end, purposes, roles, cats, _bsn, rec_i, _c, flags = _HEADER.unpack_from(v)
            if not (
                flags & _ACTIVE
                and flags & _CONSENT_BASIS
                and start <= day <= end
                and purposes & purpose_bit
                and cats & wanted == wanted
                and (roles & role_bit or recipient in self._recipients.values[rec_i])
                and (holder is None or holder in self._cold.values[_c][4])
                and (self._cold.values[_c][5] in (None, case))
            ):
                continue
            if best is None or (at, v[_HEADER_SIZE:]) > (best[0], best[1][_HEADER_SIZE:]):
                best = (at, v)
        return None if best is None else self._unpack(best[1])


_EMPTY_LOOKUP = ConsentLookup()

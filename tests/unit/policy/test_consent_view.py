"""The consent view: versions, revocation, expiry, late older versions, order tolerance."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_support import ON, PSEUDONYM, consent

from broker.policy import ConsentChangeKind, ConsentView
from schemas.flows.consent import ConsentRecord, ConsentStatus, Grantor
from schemas.vocab import DataCategory, LegalBasis, PartyRole, PurposeOfUse

T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
ROLE = PartyRole.COORDINATING_PROVIDER
CATS = {DataCategory.IDENTITY, DataCategory.REFERRAL_SIGNAL}


def norm(rec: ConsentRecord | None) -> dict[str, object] | None:
    """A record with its code lists as sets: the view keeps codes in canonical (enum) order."""
    if rec is None:
        return None
    d = rec.model_dump()
    for k in ("recipients", "recipient_roles", "purposes", "categories"):
        d[k] = set(d[k])
    return d


def find(view: ConsentView, *, on: date = ON, recipient: str = "transfore",
         role: PartyRole = ROLE, purpose: PurposeOfUse = PurposeOfUse.COC,
         categories: set[DataCategory] | None = None, pseudonym: str = PSEUDONYM):
    return view.find(pseudonym, recipient=recipient, role=role, purpose=purpose,
                     categories=CATS if categories is None else categories, on=on)


def test_grant_then_find_returns_the_full_record() -> None:
    view = ConsentView()
    rec = consent(roles=(ROLE,), end=date(2024, 12, 31))
    change = view.apply(PSEUDONYM, rec)
    assert change.kind is ConsentChangeKind.GRANTED and change.changed
    assert len(view) == 1 and view.active_count == 1
    assert norm(find(view)) == norm(rec)


def test_record_round_trips_every_field() -> None:
    view = ConsentView()
    rec = consent(recipients=("transfore", "fivoor"), roles=(ROLE, PartyRole.ZVH),
                  purposes=(PurposeOfUse.COC, PurposeOfUse.SAFETY), end=date(2025, 1, 1),
                  bsn="123456782",
                  recorded_at=datetime(2024, 1, 1, 9, 0, 0, 123456, tzinfo=UTC))
    rec = rec.model_copy(update={"grantor": Grantor.REPRESENTATIVE,
                                 "representative_name": "mr. A. de Vries"})
    view.apply(PSEUDONYM, rec)
    [back] = view.records(PSEUDONYM)
    assert norm(back) == norm(rec)


def test_leading_zero_bsn_survives() -> None:
    view = ConsentView()
    rec = consent(bsn="012345672", roles=(ROLE,))
    view.apply(PSEUDONYM, rec)
    assert view.records(PSEUDONYM)[0].person_bsn == "012345672"


def test_recipient_by_id_or_role() -> None:
    view = ConsentView()
    view.apply(PSEUDONYM, consent(recipients=("transfore",)))
    assert find(view, recipient="transfore") is not None
    assert find(view, recipient="fivoor") is None  # same role, other provider
    view.apply(PSEUDONYM, consent("c-2", roles=(PartyRole.ZVH,)))
    assert find(view, recipient="zvh-utrecht", role=PartyRole.ZVH) is not None


def test_purpose_and_categories_must_be_covered() -> None:
    view = ConsentView()
    view.apply(PSEUDONYM, consent(roles=(ROLE,), categories=tuple(CATS)))
    assert find(view, purpose=PurposeOfUse.TREAT) is None
    assert find(view, categories=CATS | {DataCategory.CLINICAL}) is None
    assert find(view, categories={DataCategory.IDENTITY}) is not None


def test_expired_and_not_yet_valid_do_not_count() -> None:
    view = ConsentView()
    view.apply(PSEUDONYM, consent(roles=(ROLE,), start=date(2024, 1, 1), end=date(2024, 3, 31)))
    assert find(view, on=date(2024, 3, 31)) is not None  # last day counts
    assert find(view, on=date(2024, 4, 1)) is None
    assert find(view, on=date(2023, 12, 31)) is None
    lookup = view.lookup(PSEUDONYM, recipient="transfore", role=ROLE,
                         purpose=PurposeOfUse.COC, on=date(2024, 4, 1))
    assert lookup.in_force == () and lookup.expired == 1


def test_revocation_applies_to_every_later_decision() -> None:
    view = ConsentView()
    rec = consent(roles=(ROLE,))
    view.apply(PSEUDONYM, rec)
    assert find(view) is not None
    revoke = rec.model_copy(update={"status": ConsentStatus.INACTIVE,
                                    "recorded_at": T0 + timedelta(days=10)})
    change = view.apply(PSEUDONYM, revoke)
    assert change.kind is ConsentChangeKind.REVOKED
    assert change.previous_recorded_at == rec.recorded_at
    assert find(view) is None
    assert len(view) == 1 and view.active_count == 0
    lookup = view.lookup(PSEUDONYM, recipient="x", role=ROLE, purpose=PurposeOfUse.COC, on=ON)
    assert lookup.revoked == 1


def test_older_version_arriving_late_never_overrides_a_newer_one() -> None:
    view = ConsentView()
    v1 = consent(roles=(ROLE,), recorded_at=T0)
    v2 = v1.model_copy(update={"status": ConsentStatus.INACTIVE,
                               "recorded_at": T0 + timedelta(hours=1)})
    assert view.apply(PSEUDONYM, v2).kind is ConsentChangeKind.REVOKED  # revocation first
    change = view.apply(PSEUDONYM, v1)  # the grant arrives late
    assert change.kind is ConsentChangeKind.IGNORED_OLDER_VERSION
    assert not change.changed
    assert find(view) is None
    assert [norm(r) for r in view.records(PSEUDONYM)] == [norm(v2)]


def test_update_narrows_and_reapply_is_unchanged() -> None:
    view = ConsentView()
    v1 = consent(roles=(ROLE,), recorded_at=T0)
    v2 = v1.model_copy(update={"categories": (DataCategory.IDENTITY,),
                               "recorded_at": T0 + timedelta(days=1)})
    view.apply(PSEUDONYM, v1)
    assert view.apply(PSEUDONYM, v2).kind is ConsentChangeKind.UPDATED
    assert view.apply(PSEUDONYM, v2).kind is ConsentChangeKind.UNCHANGED
    assert view.apply(PSEUDONYM, v1).kind is ConsentChangeKind.IGNORED_OLDER_VERSION
    assert find(view) is None  # referral-signal no longer consented
    assert find(view, categories={DataCategory.IDENTITY}) is not None
    assert len(view) == 1


def test_regrant_after_revocation() -> None:
    view = ConsentView()
    v1 = consent(roles=(ROLE,), recorded_at=T0)
    v2 = v1.model_copy(update={"status": ConsentStatus.INACTIVE, "recorded_at": T0 + timedelta(1)})
    v3 = v1.model_copy(update={"recorded_at": T0 + timedelta(2)})
    kinds = [view.apply(PSEUDONYM, v).kind for v in (v1, v2, v3)]
    assert kinds == [ConsentChangeKind.GRANTED, ConsentChangeKind.REVOKED,
                     ConsentChangeKind.GRANTED]
    assert norm(find(view)) == norm(v3) and view.active_count == 1


def test_consent_ids_are_scoped_per_person_and_persons_are_separate() -> None:
    view = ConsentView()
    view.apply("p-a", consent(roles=(ROLE,)))
    view.apply("p-b", consent(roles=(ROLE,), categories=(DataCategory.IDENTITY,)))
    assert len(view) == 2 and view.persons == 2
    assert find(view, pseudonym="p-a") is not None
    assert find(view, pseudonym="p-b") is None
    assert find(view, pseudonym="p-unknown") is None


def test_newest_in_force_consent_is_returned() -> None:
    view = ConsentView()
    old = consent("c-old", roles=(ROLE,), recorded_at=T0)
    new = consent("c-new", roles=(ROLE,), recorded_at=T0 + timedelta(days=3))
    view.apply(PSEUDONYM, new)
    view.apply(PSEUDONYM, old)
    result = find(view)
    assert result is not None and result.consent_id == "c-new"


def test_register_entries_with_another_legal_basis_are_not_consents() -> None:
    view = ConsentView()
    entry = consent(roles=(ROLE,)).model_copy(update={"legal_basis": LegalBasis.PUBLIC_TASK})
    view.apply(PSEUDONYM, entry)
    assert len(view) == 1 and find(view) is None


def test_same_timestamp_conflict_is_resolved_the_same_in_any_order() -> None:
    a = consent(roles=(ROLE,), categories=(DataCategory.IDENTITY,))
    b = consent(roles=(ROLE,), categories=(DataCategory.IDENTITY, DataCategory.CONTACT))
    r = a.model_copy(update={"status": ConsentStatus.INACTIVE})
    finals = set()
    for order in itertools.permutations([a, b]):
        view = ConsentView()
        for v in order:
            view.apply(PSEUDONYM, v)
        finals.add(view.records(PSEUDONYM)[0].model_dump_json())
    assert len(finals) == 1
    for order in itertools.permutations([a, b, r]):
        view = ConsentView()
        for v in order:
            view.apply(PSEUDONYM, v)
        assert view.records(PSEUDONYM)[0].status is ConsentStatus.INACTIVE  # revocation wins


versions = st.lists(
    st.tuples(
        st.sampled_from(["c-1", "c-2", "c-3"]),
        st.integers(0, 5),  # recorded_at offset (hours): ties happen
        st.booleans(),  # active
        st.sampled_from([None, date(2024, 3, 1), date(2025, 1, 1)]),
        st.frozensets(st.sampled_from([DataCategory.IDENTITY, DataCategory.REFERRAL_SIGNAL,
                                       DataCategory.CONTACT]), min_size=1),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(versions, st.randoms())
def test_final_state_is_independent_of_arrival_order(vs, rnd) -> None:
    records = [
        consent(cid, roles=(ROLE,), recorded_at=T0 + timedelta(hours=h), end=end,
                status=ConsentStatus.ACTIVE if active else ConsentStatus.INACTIVE,
                categories=cats)
        for cid, h, active, end, cats in vs
    ]
    shuffled = list(records)
    rnd.shuffle(shuffled)
    view_a, view_b = ConsentView(), ConsentView()
    for r in records:
        view_a.apply(PSEUDONYM, r)
    for r in shuffled + records:  # and applying everything twice changes nothing
        view_b.apply(PSEUDONYM, r)

    def state(view: ConsentView) -> list[str]:
        return sorted(str(norm(r)) for r in view.records(PSEUDONYM))

    assert state(view_a) == state(view_b)
    assert len(view_a) == len(view_b) == len({cid for cid, *_ in vs})
    # each consent's surviving version is the newest one
    for rec in view_a.records(PSEUDONYM):
        newest = max(r.recorded_at for r in records if r.consent_id == rec.consent_id)
        assert rec.recorded_at == newest
    for day in (date(2024, 2, 1), date(2024, 6, 1)):
        assert find(view_a, on=day, categories={DataCategory.IDENTITY}) == find(
            view_b, on=day, categories={DataCategory.IDENTITY}
        )


@pytest.mark.parametrize("n", [2000])
def test_memory_per_consent_is_lean(n: int) -> None:
    """A coarse guard (the benchmark measures it properly): well under 400 bytes per consent."""
    import tracemalloc

    records = [consent(f"consent-{i:07d}", roles=(ROLE,)) for i in range(n)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    view = ConsentView()
    for i, r in enumerate(records):
        view.apply(f"pseudonym-{i // 2:012d}-aaaaaaaaaaaaaaaaaaaaaaaaaaaa", r)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(view) == n
    assert used / n < 400, used / n


def test_forget_drops_every_consent_of_the_erased_person_only() -> None:
    """An erasure (AVG art. 17) takes all of a person's consents out of the view, revoked ones
    too, and the counts with them; another person's stay (docs/erasure.md)."""
    view = ConsentView()
    view.apply(PSEUDONYM, consent("c-1", recipients=("transfore",)))
    view.apply(PSEUDONYM, consent("c-2", recipients=("x",), status=ConsentStatus.INACTIVE))
    view.apply("other", consent("c-3", recipients=("transfore",), bsn="999990020"))
    assert (len(view), view.active_count, view.persons) == (3, 2, 2)
    assert view.forget(PSEUDONYM) == 2
    assert view.records(PSEUDONYM) == [] and find(view) is None
    assert (len(view), view.active_count, view.persons) == (1, 1, 1)
    assert [p for p, _ in view] == ["other"]
    assert view.forget(PSEUDONYM) == 0


def test_person_bsns_names_each_person_once_with_the_bsn_of_their_consents() -> None:
    view = ConsentView()
    view.apply(PSEUDONYM, consent("c-1", recipients=("transfore",)))
    view.apply(PSEUDONYM, consent("c-2", recipients=("x",)))
    view.apply("other", consent("c-3", recipients=("transfore",), bsn="000000012"))
    assert sorted(view.person_bsns()) == sorted(
        [(PSEUDONYM, "111222333"), ("other", "000000012")]
    )

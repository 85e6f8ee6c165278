"""Pairwise refs through the store: stable, per-merchant, unlinkable, and scoped to their merchant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from storage_helpers import FakeClock, enroll_one, new_tenant

from palmid.errors import NotFoundError
from palmid.privacy.refs import is_well_formed_ref
from palmid.storage.repository import Store


def test_refs_are_stable_and_differ_between_merchants(open_store: Callable[..., Store], clock: FakeClock) -> None:
    store = open_store()
    shop, stadium = new_tenant(store, "shop"), new_tenant(store, "stadium")
    enrolled = enroll_one(store, clock, tenant_id=shop.tenant_id)
    shop_ref = store.ref_for(subject_id=enrolled.subject_id, tenant_id=shop.tenant_id)
    stadium_ref = store.ref_for(subject_id=enrolled.subject_id, tenant_id=stadium.tenant_id)
    assert shop_ref == enrolled.subject_ref
    assert stadium_ref != shop_ref
    assert is_well_formed_ref(stadium_ref)
    assert enrolled.subject_id not in shop_ref
    assert store.ref_for(subject_id=enrolled.subject_id, tenant_id=stadium.tenant_id) == stadium_ref
    store.close()
    reopened = open_store()
    assert reopened.ref_for(subject_id=enrolled.subject_id, tenant_id=stadium.tenant_id) == stadium_ref
    assert reopened.resolve_ref(subject_ref=stadium_ref, tenant_id=stadium.tenant_id) == enrolled.subject_id
    assert reopened.resolve_ref(subject_ref=shop_ref, tenant_id=shop.tenant_id) == enrolled.subject_id


def test_a_merchant_cannot_use_another_merchants_ref(store: Store, clock: FakeClock) -> None:
    shop, stadium = new_tenant(store, "shop"), new_tenant(store, "stadium")
    enrolled = enroll_one(store, clock, tenant_id=shop.tenant_id)
    with pytest.raises(NotFoundError):
        store.resolve_ref(subject_ref=enrolled.subject_ref, tenant_id=stadium.tenant_id)
    for bad in ("", "sr_", "sr_" + "a" * 26, "x" * 500, enrolled.subject_id):
        with pytest.raises(NotFoundError):
            store.resolve_ref(subject_ref=bad, tenant_id=shop.tenant_id)


def test_ref_for_unknown_subject_or_tenant(store: Store, clock: FakeClock) -> None:
    shop = new_tenant(store)
    enrolled = enroll_one(store, clock, tenant_id=shop.tenant_id)
    with pytest.raises(NotFoundError):
        store.ref_for(subject_id="0" * 32, tenant_id=shop.tenant_id)
    with pytest.raises(NotFoundError):
        store.ref_for(subject_id=enrolled.subject_id, tenant_id="0" * 32)


def test_export_shows_the_persons_data_without_templates_or_other_merchants(store: Store, clock: FakeClock) -> None:
    from palmid.privacy.refs import hash_ref

    shop, stadium = new_tenant(store, "shop"), new_tenant(store, "stadium")
    enrolled = enroll_one(store, clock, tenant_id=shop.tenant_id)
    stadium_ref = store.ref_for(subject_id=enrolled.subject_id, tenant_id=stadium.tenant_id)
    store.append_audit(
        event="identify", tenant_id=stadium.tenant_id, subject_ref_hash=hash_ref(stadium_ref), detail="matched"
    )
    at_shop = store.export_subject(subject_id=enrolled.subject_id, tenant_id=shop.tenant_id)
    assert at_shop.subject_ref == enrolled.subject_ref
    assert at_shop.template_count == 1
    assert at_shop.delete_by == clock.now + timedelta(days=365)  # default max_idle_days
    assert at_shop.consent.purposes == ("payment",)
    assert at_shop.consent.given_at_this_merchant
    assert [event.event for event in at_shop.events] == ["enroll"]
    at_stadium = store.export_subject(subject_id=enrolled.subject_id, tenant_id=stadium.tenant_id)
    assert at_stadium.subject_ref == stadium_ref
    assert not at_stadium.consent.given_at_this_merchant
    assert [event.event for event in at_stadium.events] == ["identify"]
    assert "shop" not in repr(at_stadium)
    store.erase_subject(subject_id=enrolled.subject_id, tenant_id=shop.tenant_id)
    with pytest.raises(NotFoundError):
        store.export_subject(subject_id=enrolled.subject_id, tenant_id=shop.tenant_id)

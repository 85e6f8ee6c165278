"""Pairwise refs: stable, per merchant, unlinkable without the service secret."""

from __future__ import annotations

import secrets

from palmid.privacy.refs import compute_ref, hash_ref, is_well_formed_ref


def test_refs_are_stable_opaque_and_per_merchant() -> None:
    secret = secrets.token_bytes(32)
    shop = compute_ref(secret=secret, subject_id="subject-1", tenant_id="shop")
    assert shop == compute_ref(secret=secret, subject_id="subject-1", tenant_id="shop")
    assert is_well_formed_ref(shop)
    assert "subject-1" not in shop
    stadium = compute_ref(secret=secret, subject_id="subject-1", tenant_id="stadium")
    assert stadium != shop
    assert compute_ref(secret=secret, subject_id="subject-2", tenant_id="shop") != shop


def test_refs_cannot_be_linked_or_recomputed_without_the_secret() -> None:
    secret, guess = secrets.token_bytes(32), secrets.token_bytes(32)
    refs = {compute_ref(secret=secret, subject_id=f"s{i}", tenant_id="shop") for i in range(200)}
    assert len(refs) == 200  # no collisions at 128 bits
    # Someone without the secret computes different refs for the same (person, merchant).
    assert compute_ref(secret=guess, subject_id="s1", tenant_id="shop") not in refs
    # The subject/tenant boundary is unambiguous: ("ab","c") and ("a","bc") differ.
    assert compute_ref(secret=secret, subject_id="ab", tenant_id="c") != compute_ref(
        secret=secret, subject_id="a", tenant_id="bc"
    )


def test_hash_ref_and_format_checks() -> None:
    ref = compute_ref(secret=b"k" * 32, subject_id="s", tenant_id="t")
    assert len(hash_ref(ref)) == 64
    assert hash_ref(ref) != hash_ref(ref + "x")
    for bad in ("", "sr_", "SR_" + ref[3:], ref + "a", "sr_" + "1" * 26, "sr_" + "a" * 25):
        assert not is_well_formed_ref(bad)

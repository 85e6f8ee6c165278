"""Pairwise subject refs (as OIDC pairwise subject identifiers).

``ref = "sr_" + base32(HMAC-SHA256(service secret, "palmid-ref/v1" | subject_id | tenant_id)[:16])``: stable for a
(person, merchant) pair, different for every merchant, and two merchants cannot link their refs without the
service's secret (``<data_dir>/ref_secret.key``, 0600). The store keeps only SHA-256 of each ref for lookup.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

REF_PREFIX = "sr_"
REF_BYTES = 16
_REF_RE = re.compile(r"^sr_[a-z2-7]{26}$")


def compute_ref(*, secret: bytes, subject_id: str, tenant_id: str) -> str:
    """The pairwise ref of ``subject_id`` for ``tenant_id`` (128 bits, lowercase base32)."""
    message = b"palmid-ref/v1|" + subject_id.encode() + b"|" + tenant_id.encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:REF_BYTES]
    return REF_PREFIX + base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def is_well_formed_ref(ref: str) -> bool:
    return bool(_REF_RE.match(ref))


def hash_ref(ref: str) -> str:
    """SHA-256 (hex) of a ref: what the store and the audit log keep instead of the ref itself."""
    return hashlib.sha256(ref.encode("utf-8")).hexdigest()

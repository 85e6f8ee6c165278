"""One exception tree for palmid, each error with a stable reason code.

::

    PalmidError                      (base; ``code`` is a machine-readable reason)
    ├── ConfigError                  bad configuration value (start-up)
    ├── InputError                   the caller sent something unusable (HTTP 4xx)
    │   ├── ImageError               unreadable_image, image_too_large, unsupported_format, ...
    │   ├── QualityError             blurry, too_dark, palm_too_small, hand_not_open, ... (kiosk guidance)
    │   ├── PalmNotFoundError        no_hand, multiple_hands, roi_failed
    │   ├── ConsentError             consent_required, consent_invalid
    │   └── ValidationFailed         invalid_request
    ├── TemplateError                template_corrupt, template_version_mismatch
    ├── AuthError                    unauthenticated, forbidden_scope, key_revoked
    ├── NotFoundError                not_found (also used for other merchants' refs: no existence oracle)
    ├── ConflictError                already_enrolled, idempotency_conflict
    ├── RateLimitedError             rate_limited, locked_out
    ├── CryptoError                  key_unavailable, decrypt_failed (never fails open)
    ├── StorageError                 storage_unavailable, migration_required
    └── ModelUnavailableError        model_missing (hand model not built)

The mapping to HTTP status codes lives in one place: :data:`HTTP_STATUS` (used by the service).
Messages never contain biometric data, scores or other people's identifiers.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class PalmidError(Exception):
    """Base of every palmid error. ``code`` is a stable, documented reason code."""

    default_code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ConfigError(PalmidError):
    default_code = "config_invalid"


class InputError(PalmidError):
    default_code = "invalid_input"


class ImageError(InputError):
    default_code = "unreadable_image"


class QualityError(InputError):
    """The image is readable but not good enough; ``code`` is kiosk guidance (e.g. ``move_closer``)."""

    default_code = "poor_quality"


class PalmNotFoundError(InputError):
    default_code = "no_hand"


class ConsentError(InputError):
    default_code = "consent_required"


class ValidationFailed(InputError):
    default_code = "invalid_request"


class TemplateError(PalmidError):
    default_code = "template_corrupt"


class TemplateVersionMismatch(TemplateError):
    default_code = "template_version_mismatch"


class AuthError(PalmidError):
    default_code = "unauthenticated"


class ForbiddenError(AuthError):
    default_code = "forbidden_scope"


class NotFoundError(PalmidError):
    default_code = "not_found"


class ConflictError(PalmidError):
    default_code = "conflict"


class RateLimitedError(PalmidError):
    default_code = "rate_limited"

    def __init__(self, message: str, *, code: str | None = None, retry_after_s: float = 1.0) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class CryptoError(PalmidError):
    default_code = "crypto_failure"


class StorageError(PalmidError):
    default_code = "storage_unavailable"


class ModelUnavailableError(PalmidError):
    default_code = "model_missing"


_STATUS: dict[type[PalmidError], int] = {
    ConfigError: 500,
    InputError: 422,
    ImageError: 422,
    QualityError: 422,
    PalmNotFoundError: 422,
    ConsentError: 422,
    ValidationFailed: 422,
    TemplateError: 422,
    AuthError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    RateLimitedError: 429,
    CryptoError: 500,
    StorageError: 503,
    ModelUnavailableError: 503,
    PalmidError: 500,
}

HTTP_STATUS: Mapping[type[PalmidError], int] = MappingProxyType(_STATUS)
"""Error class -> HTTP status. The one place where errors meet HTTP."""

#: Reason codes whose HTTP status differs from their class default.
_CODE_STATUS: Mapping[str, int] = MappingProxyType(
    {
        "image_too_large": 413,
        "unsupported_format": 415,
        "key_revoked": 401,
        "locked_out": 429,
    }
)


def http_status_for(error: PalmidError) -> int:
    """Return the HTTP status for ``error`` (walks the class tree; a few reason codes override)."""
    if error.code in _CODE_STATUS:
        return _CODE_STATUS[error.code]
    for cls in type(error).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500

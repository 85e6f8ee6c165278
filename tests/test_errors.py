from __future__ import annotations

from palmid import errors


def test_every_error_has_a_code_and_a_status() -> None:
    classes = [obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, errors.PalmidError)]
    assert len(classes) > 10
    for cls in classes:
        error = cls("something went wrong")
        assert error.code and error.code == cls.default_code
        assert 400 <= errors.http_status_for(error) <= 599


def test_input_errors_are_client_errors() -> None:
    assert errors.http_status_for(errors.ImageError("bad", code="unreadable_image")) == 422
    assert errors.http_status_for(errors.ImageError("big", code="image_too_large")) == 413
    assert errors.http_status_for(errors.ForbiddenError("no")) == 403
    assert errors.http_status_for(errors.RateLimitedError("slow down", code="locked_out")) == 429
    assert errors.http_status_for(errors.ConflictError("dup", code="already_enrolled")) == 409


def test_str_includes_reason_code() -> None:
    assert str(errors.QualityError("closer please", code="move_closer")) == "[move_closer] closer please"

"""The plain-language notice shown at the kiosk before any photo is taken: one version, one text.

The consent record refers to this notice by ``NOTICE_VERSION`` and the SHA-256 of the exact text shown
(:func:`render_notice`). The retention sentence is filled in from the running service's settings, so the text
a person reads always states the limits actually enforced; the hash covers that rendered text. Changing any
wording means a new ``NOTICE_VERSION``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from palmid.config import Settings

NOTICE_VERSION = "kiosk-notice-2026-11.1"
"""Version sent by the kiosk as ``consent.notice_version`` (matches the API's ``[A-Za-z0-9._-]+``)."""

NOTICE_PURPOSES: tuple[str, ...] = ("check_in", "payment", "age_check")
"""What the palm may be used for; the kiosk sends exactly these as ``consent.purposes``."""

NOTICE_TITLE = "Use your palm to pay and enter: what this means"

_SECTIONS: tuple[tuple[str, str], ...] = (
    (
        "What we collect",
        "Photos of the palm of one hand, taken by this kiosk's camera only when you press the button. "
        "The photos are turned into a palm template (numbers that describe the lines of your palm) and are "
        "then thrown away: your photos are never stored. We also keep a record of this consent (the version "
        "of this notice, the time and the shop) and a log of when your palm was used, with no pictures.",
    ),
    (
        "Why",
        "Only to recognise you when you choose to show your palm at a participating shop or venue: to check "
        "you in, to pay, or to confirm your age. We never sell, rent or share your palm data. A shop only "
        "learns yes or no and its own reference for you, which cannot be linked with other shops.",
    ),
    (
        "How long we keep it",
        "Your palm template is deleted {max_idle_days} days after you last use it, and at the latest "
        "{max_total_days} days after you enrol, whichever comes first. It is encrypted while we keep it.",
    ),
    (
        "How to delete it",
        'At any time, choose "My data" on a participating kiosk, show your palm and press "Erase". '
        "Everything is deleted at once and you get a signed receipt.",
    ),
    (
        "Your choice",
        "This is optional. If you say no, you can pay or enter the usual way, exactly as before.",
    ),
)


@dataclass(frozen=True, kw_only=True)
class NoticeSection:
    heading: str
    body: str


@dataclass(frozen=True, kw_only=True)
class KioskNotice:
    """The notice as shown: version, purposes, sections, the exact text and its SHA-256 (hex)."""

    version: str
    title: str
    purposes: tuple[str, ...]
    sections: tuple[NoticeSection, ...]
    text: str
    sha256: str


def render_notice(*, settings: Settings) -> KioskNotice:
    """The notice with the retention limits of ``settings`` filled in; ``text`` is what the consent hash covers."""
    sections = tuple(
        NoticeSection(
            heading=heading,
            body=body.format(
                max_idle_days=settings.retention.max_idle_days,
                max_total_days=settings.retention.max_total_days,
            ),
        )
        for heading, body in _SECTIONS
    )
    text = "\n\n".join([NOTICE_TITLE, *(f"{section.heading}\n{section.body}" for section in sections)]) + "\n"
    return KioskNotice(
        version=NOTICE_VERSION,
        title=NOTICE_TITLE,
        purposes=NOTICE_PURPOSES,
        sections=sections,
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )

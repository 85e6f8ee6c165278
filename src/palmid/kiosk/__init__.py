"""Kiosk pages (enrollment with consent, check-in / pay / age check, my data) served by the service at ``/kiosk``.

Plain HTML/CSS/JS in ``static/`` (no build step, nothing from a CDN). ``mount_kiosk(app, settings=settings)`` adds
them to the app; ``render_notice(settings=...)`` is the consent notice whose version and SHA-256 the consent record
references.

Setting up a kiosk (operator): create a merchant key with
``palmid tenants create SHOP --scopes enroll,identify,erase``, open ``https://SERVICE/kiosk/#setup`` once in the
kiosk's browser, paste the key and choose what a recognised palm does there (check in, pay, age check). The key is
kept in that browser's ``localStorage`` and sent only to this service as ``Authorization: Bearer``; customers
never type or see it. The service does not hand keys to pages: it serves many merchants, and a key inside a page
would be readable by anyone who can load it.
"""

from __future__ import annotations

from palmid.kiosk.mount import mount_kiosk
from palmid.kiosk.notice import NOTICE_PURPOSES, NOTICE_VERSION, KioskNotice, render_notice

__all__ = ["NOTICE_PURPOSES", "NOTICE_VERSION", "KioskNotice", "mount_kiosk", "render_notice"]

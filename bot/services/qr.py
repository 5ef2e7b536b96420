"""QR codes for invite links, printed on clinic posters and shown at home visits."""

from __future__ import annotations

import io

import qrcode


def qr_png(url: str) -> bytes:
    image = qrcode.make(url, box_size=10, border=4)
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue()

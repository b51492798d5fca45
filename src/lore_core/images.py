"""Cheap media probes for the token estimator: image dimensions and PDF page counts from base64 data.

An image's size is read from its header (PNG, JPEG, GIF, WebP) by decoding only the few base64 characters
that cover the bytes looked at; a JPEG's segments are skipped by their lengths, so a large EXIF block costs
nothing. A PDF's pages are counted by ``/Type /Page`` objects after a cheap precheck, over at most
:data:`PDF_SCAN_CAP_CHARS` characters (ENGINE.md pitfall 30). Pure functions; none of them raises.
"""

from __future__ import annotations

import binascii
import math
import re

__all__ = ["PDF_SCAN_CAP_CHARS", "image_size", "image_tokens", "pdf_page_count"]

# Claude resizes an image whose long edge exceeds 1,568 px or whose area exceeds ~1.15 megapixels, keeping
# the aspect ratio, and bills about one token per 750 px of the result (Anthropic's vision docs).
MAX_LONG_EDGE = 1568
MAX_PIXELS = 1_150_000
PIXELS_PER_TOKEN = 750

PDF_SCAN_CAP_CHARS = 48 * 1024 * 1024
"""Base64 characters of a PDF scanned for pages at most; the API caps a whole request at 32 MB anyway."""

_HEADER_BYTES = 32  # enough for PNG (24), GIF (10) and every WebP variant (30)
_MAX_JPEG_SEGMENTS = 128  # markers walked before giving up on finding a frame header
# Start-of-frame markers carry the dimensions; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RST0-7, SOI: no length field
_PAGE_RE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9])")  # not /Pages, not /PageLabels


def _read(data: str, offset: int, size: int) -> bytes:
    """Bytes ``[offset, offset + size)`` of base64 ``data``, decoding only the chars covering them."""
    first = offset // 3
    chunk = data[first * 4 : -(-(offset + size) // 3) * 4]
    chunk += "=" * (-len(chunk) % 4)
    try:
        raw = binascii.a2b_base64(chunk)
    except (binascii.Error, ValueError):
        return b""
    skip = offset - first * 3
    return raw[skip : skip + size]


def _u16be(b: bytes, at: int) -> int:
    return int.from_bytes(b[at : at + 2], "big")


def _u_le(b: bytes, at: int, size: int) -> int:
    return int.from_bytes(b[at : at + size], "little")


def _webp_size(head: bytes) -> tuple[int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        return _u_le(head, 26, 2) & 0x3FFF, _u_le(head, 28, 2) & 0x3FFF
    if chunk == b"VP8L" and head[20:21] == b"\x2f":
        bits = _u_le(head, 21, 4)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return _u_le(head, 24, 3) + 1, _u_le(head, 27, 3) + 1
    return None


def _jpeg_size(data: str) -> tuple[int, int] | None:
    pos = 2
    for _ in range(_MAX_JPEG_SEGMENTS):
        seg = _read(data, pos, 9)
        if len(seg) < 2 or seg[0] != 0xFF:
            return None
        marker = seg[1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker in _JPEG_STANDALONE:
            pos += 2
        elif marker in _JPEG_SOF:
            return (_u16be(seg, 7), _u16be(seg, 5)) if len(seg) == 9 else None
        elif marker in (0xD9, 0xDA) or len(seg) < 4 or _u16be(seg, 2) < 2:
            return None  # end of image or start of scan before any frame header, or a broken length
        else:
            pos += 2 + _u16be(seg, 2)
    return None


def image_size(data: str) -> tuple[int, int] | None:
    """``(width, height)`` of a base64 PNG, JPEG, GIF or WebP image, or None when the header is unreadable.

    The format is detected from the magic bytes, not from a declared media type.
    Example: ``image_size(base64.b64encode(png_bytes).decode()) == (640, 480)``.
    """
    head = _read(data, 0, _HEADER_BYTES)
    size: tuple[int, int] | None = None
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
        size = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        size = _u_le(head, 6, 2), _u_le(head, 8, 2)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        size = _webp_size(head)
    elif head[:3] == b"\xff\xd8\xff":
        size = _jpeg_size(data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        return None
    return size


def image_tokens(width: int, height: int) -> int:
    """Tokens of an image of this size: scaled to a long edge <= 1,568 px and <= 1.15 MP, then ceil(w*h/750).

    Raises ``ValueError`` for a non-positive dimension.
    Example: ``image_tokens(1000, 1000) == 1334``.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image dimensions must be positive, got {width}x{height}")
    scale = min(1.0, MAX_LONG_EDGE / max(width, height), math.sqrt(MAX_PIXELS / (width * height)))
    if scale < 1.0:
        # The epsilon keeps 2000 * 0.784 from flooring to 1567 through rounding error.
        width = max(1, math.floor(width * scale + 1e-9))
        height = max(1, math.floor(height * scale + 1e-9))
    return -(-(width * height) // PIXELS_PER_TOKEN)


def pdf_page_count(data: str) -> int | None:
    """Pages of a base64 PDF, counted as ``/Type /Page`` objects (at least 1); None when it is not a PDF.

    Only the first :data:`PDF_SCAN_CAP_CHARS` characters are decoded and scanned; a longer document's count is
    scaled up in proportion. Pages hidden in compressed object streams are not seen, hence the floor of 1.
    Example: ``pdf_page_count(base64.b64encode(three_page_pdf).decode()) == 3``.
    """
    scanned = data[: PDF_SCAN_CAP_CHARS - PDF_SCAN_CAP_CHARS % 4]
    try:
        raw = binascii.a2b_base64(scanned + "=" * (-len(scanned) % 4))
    except (binascii.Error, ValueError):
        return None
    if b"%PDF-" not in raw[:1024]:
        return None
    if b"/Page" not in raw:  # cheap precheck before the regex
        return 1
    pages = sum(1 for _ in _PAGE_RE.finditer(raw))
    if len(scanned) < len(data):
        pages = math.ceil(pages * len(data) / len(scanned))
    return max(1, pages)

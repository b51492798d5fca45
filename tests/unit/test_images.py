"""Image headers and PDF pages, on tiny files built byte by byte."""

from __future__ import annotations

import binascii
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lore_core import images
from lore_core.images import image_size, image_tokens, pdf_page_count

from .media_builders import b64, gif, jpeg, pdf, png, webp_vp8, webp_vp8l, webp_vp8x


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        (png(3, 2), (3, 2)),
        (png(640, 1), (640, 1)),
        (gif(5, 7), (5, 7)),
        (jpeg(800, 600), (800, 600)),
        (jpeg(4032, 3024, exif_bytes=150_000), (4032, 3024)),
        (webp_vp8x(1920, 1080), (1920, 1080)),
        (webp_vp8l(16, 9), (16, 9)),
        (webp_vp8(300, 200), (300, 200)),
    ],
    ids=["png", "png-wide", "gif", "jpeg", "jpeg-big-exif", "webp-vp8x", "webp-vp8l", "webp-vp8"],
)
def test_image_size_from_headers(raw: bytes, size: tuple[int, int]) -> None:
    assert image_size(b64(raw)) == size


@pytest.mark.parametrize(
    "data",
    [
        "",
        "not base64 at all!!",
        b64(b"plain text, no image"),
        b64(png(3, 2)[:20]),  # truncated inside IHDR
        b64(b"\xff\xd8\xff\xe0\x00\x10JFIF"),  # JPEG cut before any frame header
        "A" + b64(png(3, 2)),  # shifted base64: garbage bytes
        b64(png(0, 5)),
    ],
)
def test_unreadable_images_give_none(data: str) -> None:
    assert image_size(data) is None


def test_jpeg_probe_decodes_only_a_little(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[int] = []
    real = binascii.a2b_base64

    def spy(chunk: str | bytes) -> bytes:
        decoded.append(len(chunk))
        return real(chunk)

    monkeypatch.setattr(binascii, "a2b_base64", spy)
    data = b64(jpeg(100, 50, exif_bytes=1_000_000))
    assert image_size(data) == (100, 50)
    assert sum(decoded) < 1_000  # of ~1.3 MB of base64


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 220), st.integers(0, 40))
def test_random_access_base64_reads(raw: bytes, offset: int, size: int) -> None:
    assert images._read(b64(raw), offset, size) == raw[offset : offset + size]


@pytest.mark.parametrize(
    ("width", "height", "tokens"),
    [
        (1, 1, 1),
        (100, 100, 14),  # 10,000 / 750 = 13.3
        (1000, 1000, 1334),  # under both limits
        (1568, 1, 3),  # exactly at the long-edge limit
        (3000, 200, 218),  # long edge -> 1568 x 104
        (2000, 1000, 1533),  # long edge -> 1568 x 784 = 1.23 MP, then area -> 1516 x 758
        (10_000, 10_000, 1533),  # area -> 1072 x 1072
    ],
)
def test_image_tokens(width: int, height: int, tokens: int) -> None:
    assert image_tokens(width, height) == tokens


def test_image_tokens_rejects_empty_images() -> None:
    with pytest.raises(ValueError, match="positive"):
        image_tokens(0, 10)


def test_pdf_with_three_pages() -> None:
    assert pdf_page_count(b64(pdf(3))) == 3
    assert pdf_page_count(b64(pdf(3, compact=True))) == 3


def test_pdf_without_visible_pages_counts_one() -> None:
    assert pdf_page_count(b64(b"%PDF-1.7\n1 0 obj << /Type /ObjStm /N 5 >> stream\nxx\nendstream\n")) == 1


def test_not_a_pdf_gives_none() -> None:
    assert pdf_page_count(b64(b"hello")) is None
    assert pdf_page_count("!!!") is None


def test_pdf_scan_is_capped_and_scaled(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b64(pdf(40))
    monkeypatch.setattr(images, "PDF_SCAN_CAP_CHARS", len(data) // 2)
    pages = pdf_page_count(data)
    assert pages is not None
    assert 30 <= pages <= 50  # roughly half the pages seen, scaled back up


def test_pdf_scan_is_linear_on_hostile_input() -> None:
    hostile = b"%PDF-1.4\n" + (b"/Type " + b" " * 5_000 + b"/Pages ") * 400  # 2 MB of near misses
    started = time.perf_counter()
    assert pdf_page_count(b64(hostile)) == 1
    assert time.perf_counter() - started < 2.0

"""Media type by content: the magic bytes at the start of a file decide, never its name.

Only the first HEADER_BYTES are looked at. The list covers the containers PIL, decord and PyAV read;
anything else is "not media" and is quarantined (when its name promised media) or ignored.
"""

from __future__ import annotations

HEADER_BYTES = 256

# ISO-BMFF brands that hold still images (HEIF/AVIF); every other `ftyp` file is treated as video.
_IMAGE_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"}


def sniff(head: bytes) -> str | None:
    """"image", "video" or None for the first bytes of a file."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")):
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video"
    if head[4:8] == b"ftyp":
        return "image" if head[8:12] in _IMAGE_BRANDS else "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska / WebM
        return "video"
    if head[4:8] in (b"moov", b"mdat", b"free", b"wide"):  # QuickTime files without an ftyp box
        return "video"
    if head.startswith(b"FLV") or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47):
        return "video"
    return None

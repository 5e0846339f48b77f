"""Image decoding with PIL: EXIF orientation applied, every mode turned into 8-bit RGB, bombs refused."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


class ImageTooLarge(ValueError):
    """More pixels than the decompression-bomb limit allows."""


def decode_image(path: str, max_pixels: int) -> np.ndarray:
    """Decode `path` to uint8 (H, W, 3) RGB, in display orientation."""
    # PIL's own guard raises DecompressionBombError only at 2x its limit; our check below is the real one,
    # PIL's stays as a backstop for formats whose size is only known while decoding.
    Image.MAX_IMAGE_PIXELS = max_pixels
    with Image.open(path) as im:
        w, h = im.size
        if w * h > max_pixels:
            raise ImageTooLarge(f"{w}x{h} = {w * h} pixels > limit {max_pixels}")
        im.seek(0)  # animated GIF/WebP/TIFF: first frame
        im = ImageOps.exif_transpose(im)
        rgb = to_rgb(im)
    return np.asarray(rgb, dtype=np.uint8)


def to_rgb(im: Image.Image) -> Image.Image:
    """Explicit conversion per mode; PIL's convert("RGB") clips 16-bit and drops alpha onto black."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        im = Image.fromarray(((a - lo) * scale).round().astype(np.uint8), mode="L")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite on white: transparent regions of logos/icons are meant to be background, not black.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return im

"""Helpers for the data tests: tiny synthetic images and ImageFolder trees."""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image


def random_rgb(h=20, w=24, seed=0):
    """A random RGB PIL image (textured, so every op changes pixels)."""
    rng = np.random.RandomState(seed)
    base = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    return Image.fromarray(((base.astype(np.float32) + ramp) / 2).astype(np.uint8))


def solid(color, size=(12, 10)):
    return Image.new("RGB", size, tuple(int(c) for c in color))


def png16_rgb_bytes(arr16):
    """A 16-bit-per-channel RGB PNG (Pillow cannot write one) from an (H, W, 3) uint16 array."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def jpeg_bytes(img, **kw):
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def write_solid_folder(root, num_classes=3, per_class=5, size=(12, 10), fmt="PNG"):
    """``root/c<k>/<i>.png`` solid images; sample number ``n`` has colour ``color_of(n)``. Returns the colours
    in listing order (class, then file name)."""
    colors = []
    n = 0
    for k in range(num_classes):
        folder = os.path.join(root, f"c{k}")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            color = color_of(n)
            solid(color, size).save(os.path.join(folder, f"{i:03d}.png"), format=fmt)
            colors.append(color)
            n += 1
    return colors


def color_of(n):
    """Distinct, well separated colours (steps of 8) for sample ``n``."""
    return (8 * (n % 32), 8 * ((n // 32) % 32), 200)


def decode_solid(chw, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    """Colour of a normalised solid image (rounded to the 8-step grid of :func:`color_of`)."""
    rgb = [float(chw[c].mean()) * std[c] * 255 + mean[c] * 255 for c in range(3)]
    return (int(round(rgb[0] / 8)) * 8, int(round(rgb[1] / 8)) * 8, int(round(rgb[2])))

"""CIFAR-10's JPEG archive (``cifar10_jpeg.npz``: each split's JPEG bytes end to end and
their offsets) decoded to uint8 images once, with Pillow, and cached as ``.npy`` files.
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from annealq.files import atomic_write

log = logging.getLogger(__name__)


def decoded_jpegs(path: Path, data, split: str, folder: Path) -> np.ndarray:
    """The JPEG images of one split as uint8 ``(N, H, W, 3)``, decoded once and cached as .npy
    in ``folder``."""
    stat = path.stat()
    tag = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    cached = folder / f"{path.stem}-{tag.hexdigest()[:16]}-{split}.npy"
    if cached.is_file():
        try:
            return np.load(cached)
        except (OSError, ValueError) as exc:  # a damaged cache file is decoded again
            log.warning("ignoring unreadable decoded cache %s: %s", cached, exc)
    log.info("decoding the %s JPEG images of %s (once; cached in %s)", split, path, cached)
    images = decode_jpegs(data[f"jpeg_{split}"], data[f"offsets_{split}"])
    cached.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(cached, lambda stream: np.save(stream, images))
    return images


def decode_jpegs(blob: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The images of ``blob[offsets[i]:offsets[i + 1]]`` as uint8 ``(N, H, W, 3)``."""
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("decoding CIFAR-10's JPEG file needs Pillow: pip install pillow") from None
    view = memoryview(np.ascontiguousarray(blob))
    first = np.asarray(Image.open(io.BytesIO(view[offsets[0] : offsets[1]])).convert("RGB"))
    images = np.empty((len(offsets) - 1, *first.shape), dtype=np.uint8)
    for i, (start, end) in enumerate(
        tqdm(
            zip(offsets[:-1], offsets[1:]),
            total=len(images),
            desc="decoding JPEGs",
            unit="image",
            disable=None,
        )
    ):
        with Image.open(io.BytesIO(view[start:end])) as image:
            images[i] = np.asarray(image.convert("RGB"))
    return images

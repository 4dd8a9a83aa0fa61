"""Image resizing without TensorFlow (Pillow, bilinear, per channel on float data)."""
from __future__ import annotations

import numpy as np
from PIL import Image


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize one float HWC image to ``size`` = (h, w) with bilinear interpolation (Pillow mode "F")."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image.astype(np.float32, copy=False)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[:, :, c], dtype=np.float32))
                           .resize((width, height), Image.Resampling.BILINEAR))
                for c in range(image.shape[2])]
    return np.stack(channels, axis=-1).astype(np.float32)


def resize_images(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float NHWC batch to ``size`` = (h, w)."""
    if images.shape[1:3] == tuple(size):
        return images.astype(np.float32, copy=False)
    out = np.empty((len(images), size[0], size[1], images.shape[3]), dtype=np.float32)
    for i, image in enumerate(images):
        out[i] = resize_image(image, size)
    return out

"""Image corruptions for robustness slices: numpy/Pillow, on uint8 NHWC batches, severities 1..5.

Every corruption is deterministic given `seed` (the random draws come from a generator seeded with
(seed, family, severity)), works at any image size (sizes in pixels are given for 32x32 images and
scaled with the image side), and returns a new uint8 batch of the same shape. Severity 1 is mild,
5 is strong; the parameters follow the spirit of CIFAR-10-C (Hendrycks & Dietterich, 2019) where it
has the same corruption (noise, blur, JPEG, contrast, brightness).

Families (`FAMILIES`, `corrupt(x, family, severity, seed)`):

* lighting: ``brightness`` (add a constant), ``contrast`` (shrink towards each image's mean),
  ``gamma`` (x ** g, darker mid-tones), ``dark`` (low exposure: scale down, add sensor read noise,
  re-quantise to 8 bits, so dark scenes lose levels as a real sensor does);
* ``color_cast``: a white-balance error, per image a random warm/cool/green/magenta channel gain;
* sensor noise: ``gaussian_noise`` (additive, sigma in [0, 1] units), ``shot_noise`` (Poisson with
  fewer photons per severity);
* blur: ``defocus_blur`` (an anti-aliased disk kernel), ``motion_blur`` (a line kernel at a random
  angle per image);
* ``jpeg``: Pillow JPEG re-encoding at decreasing quality;
* ``occlusion``: random rectangles of random colour covering a growing fraction of the image.
"""

from __future__ import annotations

import io
import math
import zlib
from typing import Callable

import numpy as np
from PIL import Image

from nas.errors import NasError

SEVERITIES = (1, 2, 3, 4, 5)
_REFERENCE_SIDE = 32  # pixel sizes below are for 32x32 images and scale with the image side

_BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)  # added to [0, 1] pixels
_CONTRAST = (0.6, 0.45, 0.3, 0.2, 0.1)  # kept fraction of the deviation from the image mean
_GAMMA = (1.4, 1.8, 2.2, 2.7, 3.2)  # x ** gamma
_DARK = (
    (0.5, 0.01),
    (0.35, 0.015),
    (0.25, 0.02),
    (0.15, 0.025),
    (0.08, 0.03),
)  # (exposure, read-noise sigma)
_CAST = (0.1, 0.2, 0.3, 0.4, 0.5)  # channel gain amplitude
_GAUSSIAN = (0.04, 0.06, 0.08, 0.09, 0.10)  # CIFAR-10-C
_SHOT = (500, 250, 100, 75, 50)  # photons at full scale (CIFAR-10-C)
_DEFOCUS = (0.6, 0.9, 1.2, 1.6, 2.1)  # disk radius, pixels at 32x32
_MOTION = (3, 5, 7, 9, 11)  # line length, pixels at 32x32
_JPEG = (80, 65, 58, 50, 40)  # Pillow quality (CIFAR-10-C)
_OCCLUSION = ((1, 0.06), (1, 0.12), (2, 0.09), (2, 0.14), (3, 0.13))  # (patches, area fraction each)

# Colour casts: unit gain directions over (R, G, B): warm, cool, green, magenta.
_CAST_DIRECTIONS = np.array([[1.0, 0.0, -1.0], [-1.0, 0.0, 1.0], [-0.5, 1.0, -0.5], [0.5, -1.0, 0.5]])


def _to_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _scale(x: np.ndarray, pixels: float) -> float:
    return pixels * min(x.shape[1], x.shape[2]) / _REFERENCE_SIDE


# ---------------------------------------------------------------- lighting and colour


def brightness(x, severity, rng):
    return _to_uint8(_to_float(x) + _BRIGHTNESS[severity - 1])


def contrast(x, severity, rng):
    f = _to_float(x)
    mean = f.mean(axis=(1, 2, 3), keepdims=True)
    return _to_uint8((f - mean) * _CONTRAST[severity - 1] + mean)


def gamma(x, severity, rng):
    return _to_uint8(_to_float(x) ** _GAMMA[severity - 1])


def dark(x, severity, rng):
    exposure, sigma = _DARK[severity - 1]
    f = _to_float(x) * exposure + rng.normal(0.0, sigma, size=x.shape).astype(np.float32)
    return _to_uint8(f)


def color_cast(x, severity, rng):
    direction = _CAST_DIRECTIONS[rng.integers(0, len(_CAST_DIRECTIONS), size=len(x))]
    gains = (1.0 + _CAST[severity - 1] * direction).astype(np.float32)
    return _to_uint8(_to_float(x) * gains[:, None, None, :])


# ---------------------------------------------------------------- sensor noise


def gaussian_noise(x, severity, rng):
    return _to_uint8(_to_float(x) + rng.normal(0.0, _GAUSSIAN[severity - 1], size=x.shape).astype(np.float32))


def shot_noise(x, severity, rng):
    photons = _SHOT[severity - 1]
    return _to_uint8(rng.poisson(_to_float(x) * photons).astype(np.float32) / photons)


# ---------------------------------------------------------------- blur


def _convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve float NHWC images with a small 2-D kernel, reflect padding (a sum of shifted copies)."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    padded = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="reflect")
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    for i, j in zip(*np.nonzero(kernel)):
        out += kernel[i, j] * padded[:, i : i + h, j : j + w]
    return out


def disk_kernel(radius: float, supersample: int = 8) -> np.ndarray:
    """An anti-aliased disk: each tap is the fraction of its pixel inside the circle, normalised."""
    half = int(math.ceil(radius - 0.5))
    side = 2 * half + 1
    s = (np.arange(side * supersample) + 0.5) / supersample - side / 2
    yy, xx = np.meshgrid(s, s, indexing="ij")
    inside = (xx**2 + yy**2 <= radius**2).astype(np.float32)
    kernel = inside.reshape(side, supersample, side, supersample).mean(axis=(1, 3))
    return kernel / kernel.sum()


def line_kernel(length: float, angle_deg: float, supersample: int = 8) -> np.ndarray:
    """A normalised line of `length` pixels through the centre at `angle_deg` (anti-aliased)."""
    half = int(math.ceil(length / 2))
    side = 2 * half + 1
    kernel = np.zeros((side, side), np.float32)
    t = np.linspace(-length / 2, length / 2, int(length * supersample) + 1)
    a = math.radians(angle_deg)
    cols = np.clip(np.rint(half + t * math.cos(a)).astype(int), 0, side - 1)
    rows = np.clip(np.rint(half - t * math.sin(a)).astype(int), 0, side - 1)
    np.add.at(kernel, (rows, cols), 1.0)
    return kernel / kernel.sum()


def defocus_blur(x, severity, rng):
    radius = max(_scale(x, _DEFOCUS[severity - 1]), 0.5)
    return _to_uint8(_convolve(_to_float(x), disk_kernel(radius)))


_MOTION_ANGLES = np.arange(0.0, 180.0, 22.5)


def motion_blur(x, severity, rng):
    length = max(_scale(x, _MOTION[severity - 1]), 2.0)
    angles = rng.integers(0, len(_MOTION_ANGLES), size=len(x))
    f = _to_float(x)
    out = np.empty_like(f)
    for a in np.unique(angles):  # one convolution per distinct angle
        idx = np.flatnonzero(angles == a)
        out[idx] = _convolve(f[idx], line_kernel(length, float(_MOTION_ANGLES[a])))
    return _to_uint8(out)


# ---------------------------------------------------------------- compression and occlusion


def jpeg(x, severity, rng):
    quality = _JPEG[severity - 1]
    out = np.empty_like(x)
    for i, img in enumerate(x):
        buffer = io.BytesIO()
        Image.fromarray(img).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as im:
            out[i] = np.asarray(im.convert("RGB"))
    return out


def occlusion(x, severity, rng):
    patches, area = _OCCLUSION[severity - 1]
    n, h, w = x.shape[:3]
    ph = max(1, int(round(h * math.sqrt(area))))
    pw = max(1, int(round(w * math.sqrt(area))))
    out = x.copy()
    for i in range(n):
        for _ in range(patches):
            top = int(rng.integers(0, h - ph + 1))
            left = int(rng.integers(0, w - pw + 1))
            out[i, top : top + ph, left : left + pw] = rng.integers(0, 256, size=3, dtype=np.uint8)
    return out


CorruptionFn = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]

FAMILIES: dict[str, CorruptionFn] = {
    "brightness": brightness,
    "contrast": contrast,
    "gamma": gamma,
    "dark": dark,
    "color_cast": color_cast,
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "defocus_blur": defocus_blur,
    "motion_blur": motion_blur,
    "jpeg": jpeg,
    "occlusion": occlusion,
}

GROUPS = {
    "lighting": ("brightness", "contrast", "gamma", "dark"),
    "color": ("color_cast",),
    "noise": ("gaussian_noise", "shot_noise"),
    "blur": ("defocus_blur", "motion_blur"),
    "compression": ("jpeg",),
    "occlusion": ("occlusion",),
}


def check_family(family: str, where: str = "family") -> str:
    if family not in FAMILIES:
        raise NasError(f"{where}: unknown corruption {family!r} (known: {', '.join(FAMILIES)})")
    return family


def check_severity(severity, where: str = "severity") -> int:
    if (
        isinstance(severity, bool)
        or not isinstance(severity, (int, np.integer))
        or severity not in SEVERITIES
    ):
        raise NasError(f"{where}: severity must be an integer 1..5, got {severity!r}")
    return int(severity)


def corrupt(x: np.ndarray, family: str, severity: int, seed: int = 0) -> np.ndarray:
    """Apply one corruption to a uint8 NHWC (RGB) batch; deterministic for a given seed."""
    check_family(family)
    severity = check_severity(severity)
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        shape = getattr(x, "shape", None)
        raise NasError(
            f"corrupt: images must be a uint8 N x H x W x 3 array, got {getattr(x, 'dtype', type(x).__name__)} {shape}"
        )
    if len(x) == 0:
        return x.copy()
    key = zlib.crc32(family.encode())
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), key, severity]))
    out = FAMILIES[family](x, severity, rng)
    assert out.shape == x.shape and out.dtype == np.uint8
    return out

"""Fake camera for Chromium: a Y4M (YUV4MPEG2, I420) video made of still photos.

Chromium plays it in a loop through getUserMedia with
``--use-fake-device-for-media-stream --use-file-for-fake-video-capture=FILE.y4m``.

Command line (writes a file from ../shared/data/coep photos)::

    .venv/bin/python tests/kiosk/kiosk_camera.py --coep ../shared/data/coep --subject 001 --out /tmp/palm.y4m
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageOps

FRAME_SIZE_PX = (640, 480)


def rgb_to_i420(rgb: NDArray[np.uint8]) -> bytes:
    """One RGB frame (H, W, 3; even H and W) as I420 bytes (BT.601, limited range, as Chromium expects)."""
    height, width, _ = rgb.shape
    if height % 2 or width % 2:
        raise ValueError("frame width and height must be even")
    pixels = rgb.astype(np.float32) / 255.0
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    luma = 16.0 + 65.481 * red + 128.553 * green + 24.966 * blue
    blue_diff = 128.0 - 37.797 * red - 74.203 * green + 112.0 * blue
    red_diff = 128.0 + 112.0 * red - 93.786 * green - 18.214 * blue

    def subsample(plane: NDArray[np.float32]) -> NDArray[np.float32]:
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))

    planes = (luma, subsample(blue_diff), subsample(red_diff))
    return b"".join(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes() for plane in planes)


def write_y4m(path: Path, frames: Sequence[NDArray[np.uint8]], *, fps: int) -> Path:
    """Write ``frames`` (same size, RGB) as a Y4M file at ``fps`` frames per second."""
    if not frames:
        raise ValueError("a video needs at least one frame")
    height, width, _ = frames[0].shape
    with path.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            if frame.shape != (height, width, 3):
                raise ValueError("all frames must have the same size")
            handle.write(b"FRAME\n")
            handle.write(rgb_to_i420(frame))
    return path


def photo_frame(photo: Path, *, size_px: tuple[int, int] = FRAME_SIZE_PX) -> NDArray[np.uint8]:
    """A photo scaled and centre-cropped to ``size_px`` (width, height), EXIF orientation applied."""
    with Image.open(photo) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
        fitted = ImageOps.fit(upright, size_px, method=Image.Resampling.LANCZOS)
    return np.asarray(fitted, dtype=np.uint8)


def coep_photos(coep_dir: Path, *, subject: str) -> list[Path]:
    """Photos of one COEP subject, in manifest order."""
    with (coep_dir / "manifest.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["subject"] == subject]
    if not rows:
        raise ValueError(f"no COEP photos for subject {subject!r} in {coep_dir}")
    return [coep_dir / row["path"] for row in rows]


def palm_video(
    photos: Sequence[Path],
    out: Path,
    *,
    fps: int = 5,
    seconds_per_photo: float = 1.0,
    size_px: tuple[int, int] = FRAME_SIZE_PX,
    gain: float = 1.0,
) -> Path:
    """A Y4M video showing each photo for ``seconds_per_photo`` (the fake camera loops it).

    ``gain`` scales the brightness (e.g. 0.08: a hand in a dark room, for quality-guidance tests).
    """
    repeat = max(1, round(fps * seconds_per_photo))
    frames = []
    for photo in photos:
        frame = photo_frame(photo, size_px=size_px)
        if gain != 1.0:
            frame = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        frames.extend([frame] * repeat)
    return write_y4m(out, frames, fps=fps)


def synthetic_hand_video(out: Path, *, fps: int = 5, frames: int = 10) -> Path:
    """A drawn open hand on a dark cloth (for page-level tests with a fake API: no real data needed)."""
    width, height = FRAME_SIZE_PX
    images = []
    for index in range(frames):
        image = Image.new("RGB", (width, height), (20, 20, 24))
        draw = ImageDraw.Draw(image)
        skin = (214, 160, 130)
        shift = (index % 5) * 4
        draw.ellipse((250 + shift, 150, 470 + shift, 400), fill=skin)
        for finger in range(4):
            top = 95 + finger * 60
            draw.rounded_rectangle((120 + shift, top, 300 + shift, top + 42), radius=20, fill=skin)
        draw.rounded_rectangle((330 + shift, 40, 375 + shift, 190), radius=20, fill=skin)
        images.append(np.asarray(image, dtype=np.uint8))
    return write_y4m(out, images, fps=fps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coep", type=Path, help="COEP dataset folder (with manifest.csv); omit for a drawn hand")
    parser.add_argument("--subject", default="001")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.coep:
        path = palm_video(coep_photos(args.coep, subject=args.subject), args.out)
    else:
        path = synthetic_hand_video(args.out)
    print(f"fake camera video written to {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()

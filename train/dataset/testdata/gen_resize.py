#!/usr/bin/python3
"""Golden outputs of Pillow's bilinear resize, for TestResampleMatchesPillow.

Writes src.png (a 97x61 RGB image with smooth areas and sharp edges) and,
for each case, Pillow's Image.resize((w, h), Image.BILINEAR) of it, or of
a crop of it, as case_<name>.png. Run with Debian's /usr/bin/python3:

    /usr/bin/python3 train/dataset/testdata/gen_resize.py [--check]

--check regenerates into a temporary folder and compares the bytes.
"""
import os

import numpy as np
from PIL import Image

import checkgen

# name: (crop box (left, top, right, bottom) or None, (w, h))
CASES = {
    "shrink": (None, (41, 26)),      # both axes, by 2.37 and 2.35
    "shrink_w": (None, (40, 61)),    # width only: the vertical pass is skipped
    "enlarge": (None, (150, 95)),    # both axes grow
    "mixed": (None, (120, 30)),      # width grows, height shrinks
    "crop": ((13, 7, 80, 50), (30, 19)),  # a crop, as RandomResizedCrop
}


def source():
    rng = np.random.default_rng(7)
    h, w = 61, 97
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float64)
    img[..., 0] = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 5.0)
    img[..., 1] = 255.0 * x / (w - 1)
    img[..., 2] = np.where((x // 9 + y // 6) % 2 == 0, 250, 5)
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


def write(out):
    os.makedirs(out, exist_ok=True)
    src = source()
    src.save(os.path.join(out, "src.png"))
    for name, (box, size) in CASES.items():
        im = src.crop(box) if box else src
        im.resize(size, Image.BILINEAR).save(os.path.join(out, "case_%s.png" % name))


def main():
    checkgen.main(write, os.path.join(os.path.dirname(os.path.abspath(__file__)), "resize"), "resize goldens")


if __name__ == "__main__":
    main()

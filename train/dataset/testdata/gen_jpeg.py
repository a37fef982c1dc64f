#!/usr/bin/python3
"""JPEGs for train/dataset's tests, and libjpeg's decoding of some:

- 444.jpg, 422.jpg, 420_odd.jpg: resize/src.png (97x61, odd sizes) saved
  by Pillow with 4:4:4 and 4:2:2 chroma, and a crop of it with odd sizes
  at 4:2:0, the chroma subsamplings Go's encoder does not write
  (TestDecodedMatchesReference);
- gray.jpg and gray_libjpeg.png, 444_libjpeg_ycc.png, 420_odd_libjpeg_y.png:
  the samples libjpeg (through Pillow) decodes from gray.jpg, 444.jpg
  (its Y, Cb and Cr planes as the three channels of a PNG) and
  420_odd.jpg (its Y plane; libjpeg interpolates chroma, graft's decoder
  does not), which graft's JPEG decoder must reproduce exactly
  (TestJPEGMatchesLibjpeg);
- progressive.jpg, which that decoder leaves to image/jpeg;
- 444_restart.jpg and 420_odd_restart.jpg: 444.jpg and 420_odd.jpg with a
  restart marker every 3 MCUs and every MCU (jpegtran from Debian's
  libjpeg-turbo-progs, lossless: the samples stay those of the files
  they come from).

Run with Debian's /usr/bin/python3:

    /usr/bin/python3 train/dataset/testdata/gen_jpeg.py [--check]

--check regenerates into a temporary folder and compares the bytes.
"""
import os
import subprocess
import sys

from PIL import Image

import checkgen

HERE = os.path.dirname(os.path.abspath(__file__))


def planes(path, mode):
    """The samples libjpeg decodes from the JPEG at path, before color
    conversion: draft keeps the file's color space."""
    im = Image.open(path)
    im.draft(mode, im.size)
    im.load()
    if im.mode != mode:
        sys.exit("%s decoded as %s, not %s" % (path, im.mode, mode))
    return im


def write(out):
    os.makedirs(out, exist_ok=True)
    src = Image.open(os.path.join(HERE, "resize", "src.png")).convert("RGB")
    # Pillow's subsampling: 0 is 4:4:4, 1 is 4:2:2, 2 is 4:2:0
    src.save(os.path.join(out, "444.jpg"), quality=90, subsampling=0)
    src.save(os.path.join(out, "422.jpg"), quality=90, subsampling=1)
    src.crop((2, 1, 53, 40)).save(os.path.join(out, "420_odd.jpg"), quality=90, subsampling=2)
    src.convert("L").save(os.path.join(out, "gray.jpg"), quality=75)
    src.save(os.path.join(out, "progressive.jpg"), quality=80, progressive=True)

    for name, every in (("444", "3B"), ("420_odd", "1B")):
        with open(os.path.join(out, name + "_restart.jpg"), "wb") as f:
            subprocess.run(["jpegtran", "-restart", every, os.path.join(out, name + ".jpg")], stdout=f, check=True)

    planes(os.path.join(out, "gray.jpg"), "L").save(os.path.join(out, "gray_libjpeg.png"))
    ycc = planes(os.path.join(out, "444.jpg"), "YCbCr")
    Image.merge("RGB", ycc.split()).save(os.path.join(out, "444_libjpeg_ycc.png"))
    y = planes(os.path.join(out, "420_odd.jpg"), "YCbCr").split()[0]
    y.save(os.path.join(out, "420_odd_libjpeg_y.png"))


def main():
    checkgen.main(write, os.path.join(HERE, "jpeg"), "JPEG fixtures")


if __name__ == "__main__":
    main()

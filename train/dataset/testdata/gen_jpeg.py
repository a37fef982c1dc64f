#!/usr/bin/python3
"""JPEGs of the chroma subsamplings Go's encoder does not write, for
TestDecodedMatchesReference: resize/src.png (97x61, odd sizes) saved by
Pillow with 4:4:4 and 4:2:2 chroma, and a crop of it with odd sizes at
4:2:0. Run with Debian's /usr/bin/python3:

    /usr/bin/python3 train/dataset/testdata/gen_jpeg.py
"""
import os

from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    src = Image.open(os.path.join(HERE, "resize", "src.png")).convert("RGB")
    out = os.path.join(HERE, "jpeg")
    os.makedirs(out, exist_ok=True)
    # Pillow's subsampling: 0 is 4:4:4, 1 is 4:2:2, 2 is 4:2:0
    src.save(os.path.join(out, "444.jpg"), quality=90, subsampling=0)
    src.save(os.path.join(out, "422.jpg"), quality=90, subsampling=1)
    src.crop((2, 1, 53, 40)).save(os.path.join(out, "420_odd.jpg"), quality=90, subsampling=2)


if __name__ == "__main__":
    main()

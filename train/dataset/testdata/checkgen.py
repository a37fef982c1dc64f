"""The command line the fixture scripts of this folder share: write the
fixtures into their folder, or, with --check, regenerate them into a
temporary folder and fail unless the bytes equal the committed ones."""
import filecmp
import os
import sys
import tempfile


def main(write, folder, what):
    """write(out) writes the fixtures into the folder out; folder is
    where they are committed; what names them in messages."""
    if "--check" in sys.argv:
        with tempfile.TemporaryDirectory() as tmp:
            write(tmp)
            names = sorted(os.listdir(tmp))
            _, bad, errs = filecmp.cmpfiles(tmp, folder, names, shallow=False)
            if bad or errs:
                sys.exit("%s differ from %s's output: %s" % (what, os.path.basename(sys.argv[0]), bad + errs))
            print("%s match %s (%d files)" % (what, os.path.basename(sys.argv[0]), len(names)))
        return
    write(folder)

"""Benchmark: reading a DICOM CT series and a NIfTI file with pvcalc.io.

``pvcalc.read_scan`` checks the whole series (grouping, orientation, gaps,
duplicates, shear, sizes) before it builds a validated scan. The baseline is
the plain pydicom loop most scripts use, with no checks at all: ``dcmread``
every file, sort by ImagePositionPatient z, stack ``pixel_array * slope +
intercept`` as float32. For NIfTI the baseline is ``nibabel.load`` +
``get_fdata(dtype=float32)`` copied into memory (not left memory-mapped).
Both paths read the same files (written once by
``pvcalc.write_scan``) and their volumes are checked to agree. The ratio says
what the checks and the scan model cost.

Run: ``python benchmarks/bench_io.py`` (64 x 512 x 512 int16 series);
``--quick`` for 16 x 256 x 256; ``--repeats N`` timed runs (median reported).
"""

from __future__ import annotations

import argparse
import glob
import os
import tempfile

import nibabel as nib
import numpy as np
import pydicom
from _timing import median_time

import pvcalc


def plain_pydicom(folder):
    datasets = [pydicom.dcmread(f) for f in glob.glob(os.path.join(folder, "*.dcm"))]
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    return np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                     for ds in datasets]).astype(np.float32)


def plain_nibabel(path):
    return np.array(nib.load(path).get_fdata(dtype=np.float32))  # into memory, not a memmap


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 x 256 x 256 volume")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    shape = (16, 256, 256) if args.quick else (64, 512, 512)
    rng = np.random.default_rng(0)
    scan = pvcalc.make_scan(np.round(rng.normal(40, 100, shape)), (3.0, 0.4, 0.4))
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "ct")
        t_write, _ = median_time(lambda: pvcalc.write_scan(scan, folder, overwrite=True), 1)
        nii = os.path.join(tmp, "scan.nii")
        pvcalc.write_scan(scan, nii)
        print(f"volume {shape} int16 DICOM, {args.repeats} repeats; write_scan (DICOM, once): "
              f"{t_write * 1e3:.0f} ms")
        rows = []
        for name, ours, base in (
                ("read DICOM series", lambda: pvcalc.read_scan(folder),
                 lambda: plain_pydicom(folder)),
                ("read NIfTI (.nii)", lambda: pvcalc.read_scan(nii), lambda: plain_nibabel(nii))):
            ours()  # warm the file cache for both
            t_ours, a = median_time(ours, args.repeats)
            t_base, b = median_time(base, args.repeats)
            if name.startswith("read NIfTI"):
                b = b.transpose(2, 1, 0)  # written in (x, y, z) LPS storage order
            if not np.array_equal(a.values, b):
                raise SystemExit(f"{name}: pvcalc and baseline volumes differ")
            rows.append((name, t_ours, t_base))
        print(f"{'step':<20}{'pvcalc ms':>12}{'baseline ms':>14}{'pvcalc/baseline':>18}")
        for name, t_ours, t_base in rows:
            print(f"{name:<20}{t_ours * 1e3:>12.0f}{t_base * 1e3:>14.0f}"
                  f"{t_ours / t_base:>18.2f}")


if __name__ == "__main__":
    main()

"""``pvcalc simulate``: write simulated scans and their ground truth to disk.

Scans go out as NIfTI files or DICOM CT series through :func:`pvcalc.write_scan`,
so clinical and third-party software can score the same phantom; the truth of
every repeat goes out as one CSV (one row per repeat x lesion, the scalar
variables) and one netCDF file per repeat (everything, fraction maps included).
Files are written as each repeat completes; a repeat's netCDF truth is written
last and marks it complete, so a rerun skips complete repeats, replaces the
remains of an interrupted one, and rebuilds the CSV from the netCDF files.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

#: Named phantoms of the CLI and how to build each (phantoms.library).
PHANTOM_NAMES = ("cci", "cci_large", "motion", "patient")


def named_phantom(name: str, *, seed: int):
    """The phantom a CLI name stands for."""
    import phantoms

    builders = {
        "cci": lambda: phantoms.cci_phantom(),
        "cci_large": lambda: phantoms.cci_phantom(extension_ring=True),
        "motion": lambda: phantoms.motion_phantom(),
        "patient": lambda: phantoms.virtual_patient(seed),
    }
    if name not in builders:
        raise ValueError(
            f"unknown phantom {name!r}; choose one of {', '.join(PHANTOM_NAMES)}")
    return builders[name]()


def write_simulation(name, *, protocol="calcium_scoring", seed=0, repeats=1,
                     file_format="nifti", out, echo=print):
    """Simulate ``repeats`` scans of a named phantom and write scans and truth to ``out``."""
    import phantoms
    import pvcalc

    if file_format not in ("nifti", "dicom"):
        raise ValueError(f"file_format must be 'nifti' or 'dicom', got {file_format!r}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; give a folder path")
    folder.mkdir(parents=True, exist_ok=True)
    phantom = named_phantom(name, seed=seed)
    proto = phantoms.get_protocol(protocol)
    truth_csv = folder / "truth.csv"
    echo(f"simulating {repeats} scan(s) of {name!r} with protocol {proto.name!r}, seed {seed} "
         f"-> {folder}")
    for index, (scan, truth) in enumerate(
            phantoms.repeat(phantom, proto, seed=seed, n_repeats=repeats)):
        stem = f"scan_{index + 1:03d}"
        scan_path = folder / (f"{stem}.nii.gz" if file_format == "nifti" else stem)
        truth_path = folder / f"truth_{index + 1:03d}.nc"
        if truth_path.exists() and scan_path.exists():
            echo(f"  {stem}: already written, skipped")
            continue
        # the truth file is written last and marks a complete repeat: a scan or label
        # image without it is the remains of an interrupted run and is replaced
        pvcalc.write_scan(scan, scan_path, overwrite=True)
        _write_label_image(scan, truth, folder / f"labels_{index + 1:03d}.nii.gz")
        _write_truth_netcdf(truth.assign_attrs(scan_file=scan_path.name), truth_path)
        echo(f"  {stem}: {scan.sizes['z']} x {scan.sizes['y']} x {scan.sizes['x']} voxels -> "
             f"{scan_path.name}, labels_{index + 1:03d}.nii.gz, {truth_path.name}")
    _write_truth_table(folder, truth_csv)
    echo(f"truth table: {truth_csv}")
    echo(f"score a scan per lesion with: pvcalc score {folder / 'scan_001'}"
         f"{'.nii.gz' if file_format == 'nifti' else ''} --labels {folder / 'labels_001.nii.gz'}")


def truth_table(truth) -> pd.DataFrame:
    """The per-lesion scalar variables of a truth Dataset as a tidy table."""
    scalar = [v for v in truth.data_vars if truth[v].dims == ("lesion",)]
    return truth[scalar].to_dataframe().reset_index()


def _write_truth_table(folder: Path, path: Path) -> None:
    """One CSV row per repeat x lesion, rebuilt from every complete repeat's netCDF."""
    import xarray as xr

    tables = []
    for nc in sorted(folder.glob("truth_[0-9][0-9][0-9].nc")):
        with xr.open_dataset(nc) as truth:
            repeat = int(nc.stem.split("_")[1])
            tables.append(truth_table(truth.load()).assign(
                repeat=repeat, scan_file=truth.attrs.get("scan_file", "")))
    tmp = path.with_suffix(".csv.part")
    pd.concat(tables, ignore_index=True).to_csv(tmp, index=False)
    tmp.replace(path)


def _write_label_image(scan, truth, path: Path) -> None:
    """Lesion ROIs (footprint + 2 mm) as a NIfTI label image with names in its JSON sidecar."""
    import pvcalc
    from pvcalc.rois import truth_roi_labels

    labels = truth_roi_labels(scan, truth)
    image = scan.copy(data=labels.values.astype("float32"))
    image.attrs = {"kvp": scan.attrs["kvp"], "slice_thickness_mm": scan.attrs["slice_thickness_mm"],
                   "units": "label", "label_names": {str(k): v for k, v in
                                                     labels.attrs["label_names"].items()}}
    pvcalc.write_scan(image, path, overwrite=True)


def _write_truth_netcdf(truth, path: Path) -> None:
    # netCDF attributes must be numbers or strings
    clean = truth.copy()
    clean.attrs = {k: (int(v) if isinstance(v, bool) else v) for k, v in truth.attrs.items()
                   if isinstance(v, (str, int, float, bool))}
    tmp = path.with_suffix(".nc.part")
    clean.to_netcdf(tmp)
    tmp.replace(path)


def run(args) -> int:
    """``pvcalc simulate NAME``: write simulated scans (NIfTI or DICOM) and truth (CSV + netCDF)."""
    write_simulation(args.name, protocol=args.protocol, seed=args.seed, repeats=args.repeats,
                     file_format=args.format, out=args.out, echo=print)
    return 0

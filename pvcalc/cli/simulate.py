"""``pvcalc simulate``: write simulated scans and their ground truth to disk.

Scans go out as NIfTI files or DICOM CT series through :func:`pvcalc.write_scan`,
so clinical and third-party software can score the same phantom; the truth of
every repeat goes out as one CSV (one row per repeat x lesion, the scalar
variables) and one netCDF file per repeat (everything, fraction maps included).

Each repeat is simulated alone (:func:`phantoms.simulate_repeat`) and its files
are written before the next one is simulated, so memory stays that of one
repeat. The output folder belongs to one run (``docs/io.md``, "Output folders of
``pvcalc simulate``"): ``run.json`` records what defines the run and the size
and SHA-256 of every file of each complete repeat; ``run.lock`` keeps a second
run out while one is writing; a rerun of the same run verifies the complete
repeats, skips those that match without simulating them and redoes the rest; a
different run is refused unless ``force=True`` (``--force``).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import numbers
import os
import re
from pathlib import Path

import pandas as pd

from phantoms.simulate import GATING_JITTER_SD, ROTATION_SD_DEG, TRANSLATION_SD_MM
from pvcalc.cli import _run_folder

__all__ = ["PHANTOM_NAMES", "SIMULATED_STUDY_DATETIME", "SIMULATE_OPTIONS", "named_phantom",
           "run_spec", "write_simulation"]

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


#: What ``pvcalc simulate`` passes to :func:`phantoms.simulate_repeat` besides
#: phantom, protocol, seed and index (recorded in ``run.json``).
SIMULATE_OPTIONS = {"reposition": True, "noise": True, "translation_sd_mm": TRANSLATION_SD_MM,
                    "rotation_sd_deg": ROTATION_SD_DEG, "gating_jitter_sd": GATING_JITTER_SD,
                    "n_time_samples": 16, "nsub": 4, "fraction_maps": True}
#: StudyDate/StudyTime (and Series/Content) of simulated DICOM series: a fixed
#: date, so that the same run gives the same bytes.
SIMULATED_STUDY_DATETIME = datetime.datetime(2000, 1, 1, 0, 0, 0)
#: Identifies run.json as the record of a ``pvcalc simulate`` run.
RUN_KIND = "pvcalc simulate run"
#: Every name a run writes at the top of its folder (and may replace or delete):
#: ``scan_NNN.nii.gz`` + ``scan_NNN.json`` or the DICOM folder ``scan_NNN``,
#: ``labels_NNN.nii.gz`` + ``labels_NNN.json``, ``truth_NNN.nc``, ``truth.csv``, ``run.json``.
OUTPUT_NAME = re.compile(r"(?:(?:scan|labels)_(\d{3})(?:\.nii\.gz|\.json)?|truth_(\d{3})\.nc"
                         r"|truth\.csv|run\.json)")
#: The files pvcalc writes inside a DICOM folder ``scan_NNN``.
DICOM_FILE_NAME = re.compile(r"slice_\d{5}\.dcm")


def run_spec(name, protocol, *, seed, file_format) -> dict:
    """What defines a ``pvcalc simulate`` run, as stored under ``spec`` in ``run.json``.

    Phantom name, every field of the protocol, seed, file format, the options
    of :data:`SIMULATE_OPTIONS`, the pvcalc and phantoms versions and, for
    DICOM, the study date and UID root written into the files. Two runs with
    the same spec write the same bytes.
    """
    import phantoms
    import pvcalc
    from pvcalc.io._dicom_write import UID_ROOT

    spec = {"phantom": name,
            "protocol": {f.name: getattr(protocol, f.name) for f in dataclasses.fields(protocol)},
            "seed": int(seed), "format": file_format, "options": SIMULATE_OPTIONS,
            "pvcalc_version": pvcalc.__version__, "phantoms_version": phantoms.__version__}
    if file_format == "dicom":
        spec["dicom"] = {"study_datetime": SIMULATED_STUDY_DATETIME.isoformat(),
                         "uid_root": UID_ROOT}
    # tuples -> lists and numpy scalars -> numbers, as read back from run.json
    return json.loads(json.dumps(spec, default=lambda v: v.item()))


def _checked(name, protocol, seed, repeats, file_format, out):
    """Validate every argument; return (phantom, Protocol, folder). Creates nothing."""
    import phantoms

    if not isinstance(name, str) or name not in PHANTOM_NAMES:
        raise ValueError(f"unknown phantom {name!r}; choose one of {', '.join(PHANTOM_NAMES)}")
    if isinstance(protocol, str):
        protocol = phantoms.get_protocol(protocol)
    elif not isinstance(protocol, phantoms.Protocol):
        raise TypeError(f"protocol must be a preset name or a phantoms.Protocol, got "
                        f"{type(protocol).__name__}; e.g. protocol='calcium_scoring'")
    for label, value, low, high in (("seed", seed, 0, None), ("repeats", repeats, 1, 999)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{label} must be an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            raise ValueError(f"{label} must be a non-negative integer, got {value}; e.g. 0"
                             if high is None else f"{label} must be an integer from {low} to "
                             f"{high} (files are numbered 001-999), got {value}")
    if file_format not in ("nifti", "dicom"):
        raise ValueError(f"file_format must be 'nifti' or 'dicom', got {file_format!r}")
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise TypeError(f"out must be a folder path, got {out!r}")
    folder = Path(out)
    if os.path.lexists(folder) and not folder.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder; give a folder path")
    return named_phantom(name, seed=seed), protocol, folder


def write_simulation(name, *, protocol="calcium_scoring", seed=0, repeats=1,
                     file_format="nifti", out, force=False, echo=print):
    """Simulate repeats of a named phantom and write scans and truth into the folder ``out``.

    Parameters
    ----------
    name : str
        One of :data:`PHANTOM_NAMES`.
    protocol : str or phantoms.Protocol
        A preset name (``phantoms.PROTOCOLS``) or a protocol.
    seed : int
        Seed of the series of repeats (repeat ``k`` is
        ``phantoms.simulate_repeat(..., seed=seed, index=k - 1)``).
    repeats : int
        Repeats 1..``repeats`` are made sure to be in the folder; complete
        repeats already there (also beyond ``repeats``) are verified and kept.
    file_format : {"nifti", "dicom"}
    out : str or os.PathLike
        The output folder (created if needed, after every argument is checked).
    force : bool
        Replace the folder's run outputs when they belong to another run (or
        to none that ``run.json`` records); files with other names are kept.
    echo : callable
        Receives the progress lines.

    Raises
    ------
    ValueError, TypeError
        A bad argument, or a folder holding another run (without ``force``);
        the message lists what differs.
    OSError
        Another run holds the folder, or the folder holds files that the run
        would have to replace but did not write.
    """
    phantom, proto, folder = _checked(name, protocol, seed, repeats, file_format, out)
    spec = run_spec(name, proto, seed=seed, file_format=file_format)
    echo(f"simulating {repeats} scan(s) of {name!r} with protocol {proto.name!r}, seed {seed} "
         f"-> {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    with _run_folder.locked(folder):
        _run_folder.remove_temporaries(folder)
        done = _prepare(folder, spec, force, echo)
        with _run_folder.scratch(folder) as tmp:
            record = {"kind": RUN_KIND, "version": 1, "spec": spec, "repeats": done}
            _save(tmp, folder, record)
            n = max([repeats] + [int(k) for k in done])
            if n > repeats:
                echo(f"  the folder already holds {n} repeats; all are kept")
            for index in range(n):
                key = f"{index + 1:03d}"
                if key in done:
                    problem = _run_folder.verify(folder, done[key])
                    if problem is None:
                        echo(f"  scan_{key}: already written, skipped (files match run.json)")
                        continue
                    echo(f"  scan_{key}: {problem}; simulating it again")
                    del done[key]
                    _save(tmp, folder, record)
                done[key], written = _write_repeat(phantom, proto, spec, index, folder, tmp)
                _save(tmp, folder, record)  # the repeat is complete once run.json lists it
                echo(f"  scan_{key}: {written}")
            _write_truth_table(folder, tmp, sorted(done))
    echo(f"truth table: {folder / 'truth.csv'}")
    echo(f"score a scan per lesion with: pvcalc score {folder / 'scan_001'}"
         f"{'.nii.gz' if file_format == 'nifti' else ''} --labels {folder / 'labels_001.nii.gz'}")


def _write_repeat(phantom, protocol, spec, index, folder: Path, tmp: Path):
    """Simulate repeat ``index``, write its files in ``tmp``, move them into ``folder``.

    Returns the size and SHA-256 of every file (for run.json), taken in ``tmp``
    and checked again in place, and a line saying what was written.
    """
    import phantoms
    import pvcalc

    key = f"{index + 1:03d}"
    old = [e for e in os.listdir(folder) if _repeat_of(e) == key]
    _run_folder.check_removable(folder, old, DICOM_FILE_NAME)  # refuse before simulating
    scan, truth = phantoms.simulate_repeat(phantom, protocol, seed=spec["seed"], index=index,
                                           **SIMULATE_OPTIONS)
    shape = "{z} x {y} x {x}".format(**scan.sizes)
    if spec["format"] == "nifti":
        scan_name, dicom = f"scan_{key}.nii.gz", {}
    else:
        # UIDs from the run's identity and the repeat: the same run gives the same UIDs
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        scan_name = f"scan_{key}"
        dicom = {"uid_seed": f"pvcalc simulate {digest} repeat {key}",
                 "study_datetime": SIMULATED_STUDY_DATETIME}
    pvcalc.write_scan(scan, tmp / scan_name, format=spec["format"], **dicom)
    _write_label_image(scan, truth, tmp / f"labels_{key}.nii.gz")
    _write_truth_netcdf(truth.assign_attrs(scan_file=scan_name), tmp / f"truth_{key}.nc")
    del scan, truth
    written = sorted(os.listdir(tmp))
    files = _run_folder.records(tmp, written)
    _run_folder.remove(folder, old, DICOM_FILE_NAME)
    _run_folder.install(tmp, folder, written)
    problem = _run_folder.verify(folder, files)
    if problem is not None:
        raise _run_folder.FolderError(f"{folder}: {problem} right after it was written")
    return files, f"{shape} voxels -> {scan_name}, labels_{key}.nii.gz, truth_{key}.nc"


def _repeat_of(entry: str):
    """'001' for the outputs of repeat 1 (``scan_001.nii.gz``, ...), else None."""
    m = OUTPUT_NAME.fullmatch(entry)
    return (m.group(1) or m.group(2)) if m else None


def _save(tmp: Path, folder: Path, record: dict) -> None:
    data = json.dumps(record, indent=1, sort_keys=True) + "\n"
    _run_folder.write_file(tmp, folder, _run_folder.RUN_FILE, data.encode("utf-8"))


def _prepare(folder: Path, spec: dict, force: bool, echo) -> dict:
    """The complete repeats to keep ({'001': files}); refuse or clear another run's outputs."""
    outputs = sorted(e for e in os.listdir(folder) if OUTPUT_NAME.fullmatch(e))
    fix = "pass --force to replace that run's outputs, or choose another --out folder"
    try:
        record = _run_folder.read_record(folder, RUN_KIND)
    except _run_folder.FolderError:
        if not force:
            raise
        record = None
    if force:
        if outputs:
            _run_folder.remove(folder, outputs, DICOM_FILE_NAME)
            echo(f"  --force: removed the earlier run's outputs ({len(outputs)} entries)")
        return {}
    if record is None:
        if outputs:
            shown = ", ".join(outputs[:3]) + (", ..." if len(outputs) > 3 else "")
            raise _run_folder.FolderError(
                f"{folder} holds pvcalc simulate outputs ({shown}) but no run.json, so the run "
                f"they belong to is unknown; {fix}")
        return {}
    diffs = _run_folder.differences(record["spec"], spec)
    if diffs:
        listed = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise ValueError(f"{folder} holds a pvcalc simulate run that differs from this one "
                         f"({listed}); {fix}")
    done = {k: v for k, v in record["repeats"].items() if re.fullmatch(r"\d{3}", str(k))}
    # the remains of a repeat that was being written when a run stopped
    remains = [e for e in outputs if _repeat_of(e) is not None and _repeat_of(e) not in done]
    _run_folder.remove(folder, remains, DICOM_FILE_NAME)
    return done


def truth_table(truth) -> pd.DataFrame:
    """One row per lesion of a truth Dataset (:func:`phantoms.truth.lesion_table`)."""
    from phantoms.truth import lesion_table

    return lesion_table(truth)


def _write_truth_table(folder: Path, tmp: Path, keys) -> None:
    """``truth.csv``: one row per repeat x lesion, from the netCDF truth of the complete repeats."""
    import xarray as xr

    tables = []
    for key in keys:
        with xr.open_dataset(folder / f"truth_{key}.nc") as truth:
            tables.append(truth_table(truth.load()).assign(
                repeat=int(key), scan_file=truth.attrs.get("scan_file", "")))
    data = pd.concat(tables, ignore_index=True).to_csv(index=False)
    _run_folder.write_file(tmp, folder, "truth.csv", data.encode("utf-8"))


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
    clean.to_netcdf(path)


def run(args) -> int:
    """``pvcalc simulate NAME``: write simulated scans (NIfTI or DICOM) and truth (CSV + netCDF)."""
    write_simulation(args.name, protocol=args.protocol, seed=args.seed, repeats=args.repeats,
                     file_format=args.format, out=args.out, force=args.force,
                     echo=lambda line: print(line, flush=True))
    return 0

"""The ``pvcalc`` command.

Subcommands:

- ``pvcalc demo``: simulate the calcification-insert phantom a few times and
  score it clinically, true values beside measured ones (the README's main job).
- ``pvcalc score PATH``: clinical calcium scores of a DICOM series or NIfTI file.
- ``pvcalc quantify PATH``: every partial-volume method on every lesion (ROI table,
  label image, candidates, or the located QRM insert: ``--phantom cci``) of a scan.
- ``pvcalc locate PATH``: find the QRM calcification insert's inserts and rods in a scan.
- ``pvcalc twin PATH --out DIR``: measure a scanner on its QRM phantom scan, simulate its
  twin and compare the two.
- ``pvcalc presets``: the scoring conventions.
- ``pvcalc simulate NAME --out DIR``: write simulated scans and their truth.
- ``pvcalc study check SPEC`` / ``pvcalc study run SPEC --out DIR``: benchmark
  studies (``docs/study.md``).

Every expected failure (bad path, unreadable file, mixed series, bad option)
prints one line ``pvcalc: error: ...`` on stderr and exits with status 2;
``--debug`` shows the traceback instead. Warnings raised while a command runs
(for example pydicom's about a malformed DICOM element) print one line each,
``pvcalc: warning: ...``, once per message; ``--verbose`` shows their full text
and where they were raised. The first run compiles the numerical kernels and
says so on stderr; later runs load them from the cache.

Building the parser imports no numerical code (numpy, numba, xarray, pandas),
so ``pvcalc --help`` is instant; each subcommand's module is imported when it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import textwrap
import warnings

#: Exceptions that mean "the user gave us something we cannot use". Anything
#: else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, OSError, KeyError)

#: The scanner protocol presets of :data:`phantoms.PROTOCOLS`, one line each. A
#: static copy, so that the parser is built without importing the simulator;
#: tests/test_cli.py checks it against PROTOCOLS.
PROTOCOL_SUMMARIES = {
    "calcium_scoring": "120 kVp, ECG-gated, 3 mm slices every 3 mm, soft kernel, noise SD 20 HU",
    "low_dose_chest": "120 kVp, non-gated, 1.25 mm slices every 0.625 mm, sharp kernel, "
                      "noise SD 40 HU",
    "thin_slice_cscT": "120 kVp, ECG-gated, 1 mm slices every 0.5 mm, soft kernel, "
                       "noise SD 26 HU",
    "screening_chest": "120 kVp, non-gated, 3 mm slices every 1.5 mm, soft kernel, "
                       "noise SD 36.5 HU (lung screening, NELSON-like)",
}

#: The named phantoms of ``pvcalc simulate`` (pvcalc.cli.simulate.PHANTOM_NAMES).
PHANTOM_SUMMARIES = {
    "cci": "replica of the QRM cardiac calcification insert, 300 x 200 mm body",
    "cci_large": "the same in the 400 x 300 mm extension ring",
    "motion": "one 5 mm insert per velocity (0-100 mm/s), moving in-plane",
    "patient": "virtual patient: lesions along coronary arteries (drawn from --seed)",
}

#: First-run compile time of each command's kernels, shown in the first-run notice:
#: measured with a fresh cache on 2 cores, from nearly idle to a load of 6
#: (docs/quickstart.md).
_COMPILE_SECONDS = {"demo": "30-90 s", "simulate": "20-60 s", "score": "5-20 s",
                    "presets": "5-20 s", "study": "20-60 s", "quantify": "15-50 s",
                    "twin": "30-90 s"}

#: The methods of :data:`pvcalc.methods.METHODS`, in order, for ``pvcalc quantify --help``
#: (a static copy, like PROTOCOL_SUMMARIES; tests/test_cli_quantify.py checks it).
METHOD_NAMES = ("clinical", "adaptive_groen", "adaptive_background", "integrated",
                "volume_fraction", "swcs", "em_partial_content", "mesh", "model_fit")


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    verbose = args.verbose or args.debug
    try:
        with _report_warnings(verbose=verbose), _first_compile_notice(args.command):
            return int(args.func(args) or 0)
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except USER_ERRORS as err:
        if args.debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if isinstance(err, KeyError):
            message = f"unknown name {err.args[0]!r}" if err.args else "unknown name"
        print(f"pvcalc: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pvcalc: interrupted", file=sys.stderr)
        return 130


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like the command's other errors."""

    def error(self, message):
        self.exit(2, f"pvcalc: error: {message}; see '{self.prog} --help'\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends each option's default to its help (explicit text for options without one)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or "default" in text or action.default is None
                or action.default is argparse.SUPPRESS):
            return text
        if action.default is False:
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def _listing(title, entries) -> str:
    width = max(len(name) for name in entries)
    return "\n".join([f"{title}:", *(f"  {name:{width}s}  {text}" for name, text in entries.items())])


def _add_scan_input(p):
    """The options of a command that reads one scan: PATH, --series, --strict, --hu-range."""
    p.add_argument("path", help="DICOM folder or file, or NIfTI file (.nii, .nii.gz)")
    p.add_argument("--series", default=None, metavar="UID",
                   help="SeriesInstanceUID to read when the folder holds several series "
                        "(default: the folder's only series)")
    p.add_argument("--strict", action="store_true",
                   help="fail when the DICOM folder holds files that are not slices of the "
                        "series, or slices seem missing at its ends (default: warn)")
    p.add_argument("--hu-range", nargs=2, type=float, default=None, metavar=("LOW", "HIGH"),
                   help="plausible HU of the DICOM voxels; values outside are an error "
                        "(default: -2048 to 4095 HU for 12-bit data, up to 32767 HU for "
                        "16-bit data)")


def _build_parser() -> argparse.ArgumentParser:
    from pvcalc import __version__

    parser = _Parser(
        prog="pvcalc", formatter_class=_HelpFormatter,
        description="Coronary artery calcium scoring, partial-volume methods and "
                    "CT phantom simulation.",
        epilog="'pvcalc COMMAND --help' describes each command and its options.")
    parser.add_argument("--version", action="version", version=f"pvcalc {__version__}")
    common = _Parser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show the full traceback on errors (and warnings in full)")
    common.add_argument("--verbose", action="store_true",
                        help="show warnings in full, with where they were raised "
                             "(default: off, one line per warning)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    protocols = _listing("protocols (--protocol)", PROTOCOL_SUMMARIES)

    def command(name, **kwargs):
        kwargs["description"] = textwrap.fill(kwargs["description"], width=79)
        p = sub.add_parser(name, parents=[common], formatter_class=_HelpFormatter, **kwargs)
        p.set_defaults(func=_command(name))
        return p

    p = command("demo", help="simulate the calcification-insert phantom and score it",
                description="Simulate the replica of the QRM cardiac calcification insert a few "
                            "times and score every scan clinically: the true volume and mass of "
                            "each insert beside the clinical scores, and what real scanners "
                            "measured on the physical phantom; then the mass of each insert by "
                            "every partial-volume method (pvcalc.quantify).", epilog=protocols)
    p.add_argument("--repeats", type=_positive_int, default=3, metavar="N",
                   help="number of repeated scans (new noise, repositioning and cardiac phase)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--protocol", default="calcium_scoring", choices=tuple(PROTOCOL_SUMMARIES),
                   metavar="PROTOCOL", help="scanner protocol preset (listed below)")
    p.add_argument("--extension-ring", action="store_true",
                   help="use the large body (400 x 300 mm extension ring)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write report.md (with a figure) and the per-insert and "
                        "per-scan CSV tables to this folder (default: print only)")

    p = command("score", help="clinical calcium scores of a DICOM series or NIfTI file",
                description="Clinical calcium scores (Agatston, volume, mass) of one scan.")
    _add_scan_input(p)
    p.add_argument("--labels", default=None,
                   help="label image on the same grid (NIfTI, DICOM folder or .npy); scores "
                        "are reported per label (default: none, scores of the whole scan)")
    p.add_argument("--preset", default="standard", metavar="NAME",
                   help="scoring convention (see 'pvcalc presets')")
    p.add_argument("--calibration", default=None, metavar="C_HA|FILE.json",
                   help="mass calibration factor c_HA in mg HA cm^-3 HU^-1 (e.g. 0.8), or a JSON "
                        "file with 'c_ha_mg_cm3_per_hu' (default: none, so no mass score)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format")
    p.add_argument("--lesions", action="store_true",
                   help="with --format table: also list every lesion")

    p = command("quantify", help="every partial-volume method on every lesion of a scan",
                description="Volume, mass and score of every lesion by every partial-volume "
                            "method (pvcalc.quantify): one row per lesion and method. The "
                            "lesions are spherical ROIs from a CSV table, the labels of a "
                            "label image, the scan's candidates (>= 130 HU components), or "
                            "the inserts of the QRM calcification insert located in the scan.",
                epilog=textwrap.fill("methods (--methods): " + ", ".join(METHOD_NAMES) +
                                     "; docs/methods/index.md describes each.", width=79))
    _add_scan_input(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--rois", default=None, metavar="ROIS.csv",
                       help="CSV table of spherical ROIs, one row per lesion: lesion, "
                            "centre_z_mm, centre_y_mm, centre_x_mm, radius_mm (optional "
                            "radius_z_mm), in the scan's mm coordinates (one of --rois, "
                            "--labels, --candidates, --phantom is required)")
    where.add_argument("--labels", default=None,
                       help="label image on the scan's grid (NIfTI, DICOM folder or .npy), "
                            "one lesion per label (one of the four is required)")
    where.add_argument("--candidates", action="store_true",
                       help="lesions = connected components >= 130 HU, grown by 2 mm")
    where.add_argument("--phantom", default=None, choices=("cci",),
                       help="lesions = the nine inserts of the QRM calcification insert, "
                            "located in the scan (pvcalc locate), mass calibration from its "
                            "rods unless --calibration is given; the table shows each "
                            "insert's nominal volume and mass beside the methods' results "
                            "(one of the four is required)")
    p.add_argument("--mask", default=None, metavar="LABELS",
                   help="with --candidates: label image of where candidates may lie, e.g. "
                        "the heart (default: the whole scan)")
    p.add_argument("--methods", default="all", metavar="A,B",
                   help="methods to run, separated by commas (listed below)")
    p.add_argument("--calibration", default=None, metavar="C_HA|FILE.json",
                   help="mass calibration factor c_HA in mg HA cm^-3 HU^-1 (e.g. 0.8), or a JSON "
                        "file with 'c_ha_mg_cm3_per_hu' (default: none, so no masses, and no "
                        "results of the methods that need c_HA)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format (csv and json: every column of pvcalc.quantify)")

    p = command("locate", help="find the QRM calcification insert's inserts and rods",
                description="Find the nine inserts and the two calibration rods of the QRM "
                            "cardiac calcification insert in a scan (pvcalc.qrm.locate_cci): "
                            "position, whether each was seen or placed from the fitted layout, "
                            "and a confidence; the rod calibration. Files are written only "
                            "with --out (docs/real_phantom.md).")
    _add_scan_input(p)
    p.add_argument("--out", default=None, metavar="DIR",
                   help="also write cci_overlay.png (the layout drawn on the insert plane and "
                        "the rods' section), cci_inserts.csv, cci_rods.csv and cci_rois.csv "
                        "(ROIs for 'pvcalc quantify --rois') to this folder (default: print "
                        "only)")
    p.add_argument("--no-rods", action="store_true",
                   help="accept a scan without the calibration rods (default: refuse it)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format (csv: inserts and rods in one table)")

    p = command("twin", help="measure a scanner on its QRM phantom scan and simulate its twin",
                description="Measure the scanner's protocol on its scan of the QRM phantom "
                            "(PSF from the HA rod's edge, noise SD and NPS in the insert body, "
                            "HU per mg HA from the rods; pvcalc.twin.measure_protocol), "
                            "simulate repeated scans of the phantom with it, quantify the real "
                            "scan and every twin scan the same way and compare them "
                            "(docs/real_phantom.md).",
                epilog=textwrap.fill("methods (--methods): " + ", ".join(METHOD_NAMES) + ".",
                                     width=79))
    _add_scan_input(p)
    p.add_argument("--repeats", type=_positive_int, default=5, metavar="N",
                   help="number of twin scans (new noise and repositioning each)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for twin.csv, twin_noise.csv, twin.png, report.md, "
                        "measured.csv and protocol.json (required)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the twin scans")
    p.add_argument("--methods", default="all", metavar="A,B",
                   help="methods to run, separated by commas (listed below)")
    p.add_argument("--kvp", type=float, default=None,
                   help="tube voltage (kV) when the scan does not record it (default: the "
                        "scan's DICOM KVP, else 120)")
    p.add_argument("--extension-ring", choices=("auto", "yes", "no"), default="auto",
                   help="body of the twin: from the measured body height (auto), or with / "
                        "without the extension ring")

    command("presets", help="list the scoring presets",
            description="List the scoring presets (conventions) with their sources.")

    p = command("simulate", help="simulate a named phantom and write scans and truth",
                description="Simulate a named phantom and write the scans (NIfTI or DICOM), a "
                            "label image per scan and the ground truth (CSV and netCDF).",
                epilog=_listing("phantoms (NAME)", PHANTOM_SUMMARIES) + "\n\n" + protocols)
    p.add_argument("name", metavar="NAME", help="named phantom (listed below)")
    p.add_argument("--protocol", default="calcium_scoring", choices=tuple(PROTOCOL_SUMMARIES),
                   metavar="PROTOCOL", help="scanner protocol preset (listed below)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--repeats", type=_positive_int, default=1, metavar="N",
                   help="number of repeated scans (new noise, repositioning, cardiac phase)")
    p.add_argument("--format", choices=("nifti", "dicom"), default="nifti",
                   help="scan file format")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (required; a second call of the same run verifies it "
                        "and adds missing repeats, a different run is refused)")
    p.add_argument("--force", action="store_true",
                   help="replace the folder's outputs of an earlier, different run (files "
                        "with other names are kept)")

    from pvcalc.cli.study import add_arguments as study_arguments  # argparse only

    study_arguments(command("study", help="benchmark studies: check a spec, run it",
                            description="Check or run a benchmark study: simulated scans of "
                                        "phantoms under a grid of scan conditions, quantified "
                                        "by every method, results stored as Parquet "
                                        "(docs/study.md)."),
                    common=common, formatter_class=_HelpFormatter, positive_int=_positive_int)
    return parser


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _command(name):
    """The ``run`` function of subcommand module ``pvcalc.cli.<name>``, imported when called."""
    def run(args):
        import importlib

        return importlib.import_module(f"pvcalc.cli.{name}").run(args)
    return run


@contextlib.contextmanager
def _report_warnings(*, verbose=False):
    """Print each warning raised inside the block once, as ``pvcalc: warning: ...``.

    The warning filters stay as they are (what Python hides by default stays
    hidden); only the printing changes. Without ``verbose`` a warning is its
    first line; with it, the full text, category and place it was raised.
    """
    seen = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message).strip() or category.__name__
        if (category, text) in seen:
            return
        seen.add((category, text))
        if verbose:
            full = warnings.formatwarning(message, category, filename, lineno, line)
            sys.stderr.write(f"pvcalc: warning: {full}")
        else:
            sys.stderr.write(f"pvcalc: warning: {text.splitlines()[0]}\n")

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def _first_compile_notice(command):
    """Say on stderr, once, when the block starts compiling one of our numba kernels.

    numba announces every compilation that the cache could not serve with a
    ``numba:compile`` event (:mod:`numba.core.event`); a warm cache raises
    none, so the line appears only on a cold cache.
    """
    from numba.core import event

    seconds = _COMPILE_SECONDS.get(command, "a minute at most")
    announced = []

    class Notice(event.Listener):
        def on_start(self, ev):
            func = getattr(ev.data.get("dispatcher"), "py_func", None)
            package = (getattr(func, "__module__", None) or "").split(".")[0]
            if announced or package not in ("pvcalc", "phantoms"):
                return
            from pvcalc._numba_config import used_cache_dir

            announced.append(True)
            folder = used_cache_dir()
            where = f"cached in {folder}" if folder else "no writable cache folder"
            print(f"pvcalc: compiling numerical kernels for first use (about {seconds} once; "
                  f"{where})", file=sys.stderr, flush=True)

        def on_end(self, ev):
            pass

    with event.install_listener("numba:compile", Notice()):
        yield

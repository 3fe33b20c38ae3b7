"""The ``pvcalc`` command.

Subcommands:

- ``pvcalc demo``: simulate the calcification-insert phantom a few times and
  score it clinically, true values beside measured ones (the README's main job).
- ``pvcalc score PATH``: clinical calcium scores of a DICOM series or NIfTI file.
- ``pvcalc simulate NAME --out DIR``: write simulated scans and their truth.

Every expected failure (bad path, unreadable file, mixed series, bad option)
prints one line ``pvcalc: error: ...`` on stderr and exits with status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys

#: Exceptions that mean "the user gave us something we cannot use". Anything
#: else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, OSError, KeyError)


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
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


def _build_parser() -> argparse.ArgumentParser:
    from pvcalc import __version__

    parser = argparse.ArgumentParser(
        prog="pvcalc",
        description="Coronary artery calcium scoring, partial-volume methods and "
                    "CT phantom simulation.")
    parser.add_argument("--version", action="version", version=f"pvcalc {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true",
                        help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", parents=[common],
                       help="simulate the calcification-insert phantom and score it")
    p.add_argument("--repeats", type=_positive_int, default=3,
                   help="number of repeated scans (default 3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--protocol", default="calcium_scoring",
                   help="scanner protocol preset (default calcium_scoring)")
    p.add_argument("--extension-ring", action="store_true",
                   help="use the large body (400 x 300 mm extension ring)")
    p.add_argument("--out", default=None,
                   help="folder for the report (report.md, per-insert CSV); default: print only")
    p.set_defaults(func=_command("demo"))

    p = sub.add_parser("score", parents=[common],
                       help="clinical calcium scores of a DICOM series or NIfTI file")
    p.add_argument("path", help="DICOM folder or file, or NIfTI file (.nii, .nii.gz)")
    p.add_argument("--series", default=None,
                   help="SeriesInstanceUID to read when the folder holds several series")
    p.add_argument("--labels", default=None,
                   help="label image on the same grid (NIfTI, DICOM folder or .npy); "
                        "scores are reported per label")
    p.add_argument("--preset", default="standard",
                   help="scoring convention (see 'pvcalc presets'); default standard")
    p.add_argument("--calibration", default=None, metavar="C_HA|FILE.json",
                   help="mass calibration factor c_HA in mg HA cm^-3 HU^-1 (e.g. 0.8), or a JSON "
                        "file with 'c_ha_mg_cm3_per_hu'; without it no mass score is computed")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="output format (default table)")
    p.add_argument("--lesions", action="store_true",
                   help="with --format table: also list every lesion")
    p.set_defaults(func=_command("score"))

    p = sub.add_parser("presets", parents=[common], help="list the scoring presets")
    p.set_defaults(func=_command("presets"))

    p = sub.add_parser("simulate", parents=[common],
                       help="simulate a named phantom and write scans and truth")
    p.add_argument("name", help="named phantom: cci, cci_large, motion, patient")
    p.add_argument("--protocol", default="calcium_scoring", help="scanner protocol preset")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--repeats", type=_positive_int, default=1,
                   help="number of repeated scans (new noise, repositioning, cardiac phase)")
    p.add_argument("--format", choices=("nifti", "dicom"), default="nifti",
                   help="scan file format (default nifti)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_command("simulate"))
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



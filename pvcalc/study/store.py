"""The result store of a study: Parquet parts, a manifest and the spec, in one folder.

Layout of the output folder ``DIR`` (``docs/study.md`` has the contract)::

    DIR/study.json        the canonical spec and the pvcalc / phantoms versions
    DIR/spec.toml         the spec's TOML text as given (for people; not read back)
    DIR/manifest.jsonl    one JSON line per written batch: its part file, size,
                          SHA-256, row count, task keys, failures, task times
                          and each task's stage times (simulate, calibrate,
                          rois, quantify, tabulate)
    DIR/results/part-<hash>-<n>.parquet
                          one row per scan x lesion x method (<hash>: the short
                          hash of the batch's first task key; <n>: the batch number)
    DIR/run.lock          held (fcntl.flock) while a run writes

A part is written in a scratch folder inside ``DIR``, flushed, and renamed into
``results/``; only then is its manifest line appended and flushed. A task is
complete when a manifest line lists it and its part matches the recorded size
and SHA-256: a kill at any moment loses at most the batch being written, a part
without a line (or with a torn line) is deleted and its tasks redone, and a
part whose bytes changed is detected (here and by :func:`read_results`) and
never mixed in. :func:`read_results`, :func:`read_failures` and
:func:`load_spec` (and :func:`read_scans`, one row per scan) are the interface
for reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from pathlib import Path

from pvcalc.study import _folders
from pvcalc.study._folders import FolderError

__all__ = ["MANIFEST_FILE", "RESULTS_DIR", "SPEC_FILE", "STUDY_FILE", "Store", "load_spec",
           "read_failures", "read_results", "read_scans"]

STUDY_FILE = "study.json"
SPEC_FILE = "spec.toml"
MANIFEST_FILE = "manifest.jsonl"
RESULTS_DIR = "results"
KIND = "pvcalc study"
OWNER = "pvcalc study"
#: Names of the part files (inside results/) and of every entry the store writes in DIR.
PART_NAME = re.compile(r"part-[0-9a-f]{8}-\d{5}\.parquet")
OUTPUT_NAME = re.compile(r"study\.json|spec\.toml|manifest\.jsonl|results")
_FIX = "pass --force (force=True) to start the study over, or choose another --out folder"


def _identity(spec) -> dict:
    import phantoms
    import pvcalc

    return {"spec": spec.to_dict(),
            "versions": {"pvcalc": pvcalc.__version__, "phantoms": phantoms.__version__}}


def _folder(out_dir) -> Path:
    if not isinstance(out_dir, (str, os.PathLike)) or not os.fspath(out_dir):
        raise TypeError(f"out_dir must be a folder path, got {out_dir!r}")
    return Path(out_dir)


def _parse_entry(line):
    """A manifest line as a dict, or None when it is torn or malformed."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("tasks"), list) \
            or not isinstance(entry.get("failed"), list):
        return None
    part = entry.get("part")
    if part is not None and not (
            isinstance(part, str) and part.startswith(RESULTS_DIR + "/")
            and PART_NAME.fullmatch(part[len(RESULTS_DIR) + 1:])
            and isinstance(entry.get("size"), int) and isinstance(entry.get("sha256"), str)
            and isinstance(entry.get("rows"), int)):
        return None
    return entry


def _read_manifest(folder: Path) -> list:
    path = folder / MANIFEST_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    except OSError:
        raise FolderError(f"{path} is not a plain file; {_FIX}") from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise FolderError(f"{path} is not a plain file; {_FIX}")
        lines = fh.read().decode("utf-8", errors="replace").splitlines()
    return [e for e in (_parse_entry(line) for line in lines) if e is not None]


def _part_problem(folder: Path, entry):
    """None when the entry's part file matches it, else why not (one phrase)."""
    import pyarrow.parquet as pq

    try:
        got = _folders.file_record(folder, entry["part"])
    except FileNotFoundError:
        return f"{entry['part']} is missing"
    except OSError:
        return f"{entry['part']} is not a plain file inside the folder"
    if got["size"] != entry["size"]:
        return f"{entry['part']} has {got['size']} bytes, the manifest records {entry['size']}"
    if got["sha256"] != entry["sha256"]:
        return f"the SHA-256 of {entry['part']} differs from the manifest"
    try:
        rows = pq.read_metadata(folder / entry["part"]).num_rows
    except Exception as exc:  # noqa: BLE001  (pyarrow raises several types for a bad file)
        return f"{entry['part']} is not readable Parquet ({exc})"
    if rows != entry["rows"]:
        return f"{entry['part']} has {rows} rows, the manifest records {entry['rows']}"
    return None


class Store:
    """The open store of one run (use :meth:`open`): completed tasks and batch writes."""

    def __init__(self, folder: Path, entries: list):
        self.folder = folder
        self.entries = entries
        self.done = {k for e in entries for k in e["tasks"]}
        self._number = 1 + max([int(e["part"][-13:-8]) for e in entries if e.get("part")],
                               default=0)

    @classmethod
    @contextlib.contextmanager
    def open(cls, out_dir, spec, *, force=False, echo=print):
        """Lock ``out_dir``, check it holds this study (or nothing), and yield the store.

        Raises ValueError when the folder holds another study (the message lists
        what differs) and FolderError when another run holds it or it holds
        files the store did not write where it must write; ``force`` deletes the
        earlier study's files (only names the store writes) and starts over.
        """
        folder = _folder(out_dir)
        if os.path.lexists(folder) and not folder.is_dir():
            raise ValueError(f"--out {folder} exists and is not a folder; give a folder path")
        folder.mkdir(parents=True, exist_ok=True)
        with _folders.locked(folder, owner=OWNER):
            _folders.remove_temporaries(folder)
            store = cls(folder, _prepare(folder, spec, force, echo))
            yield store

    def write(self, outcomes) -> dict:
        """Write one batch of :class:`~pvcalc.study._execute.TaskOutcome` s; return its entry."""
        import pyarrow.parquet as pq

        outcomes = sorted(outcomes, key=lambda o: o.key)
        good = [o for o in outcomes if o.table is not None]
        entry = {"part": None, "tasks": [o.key for o in good],
                 "failed": [{"task_key": o.key, "error": o.error, "traceback": o.traceback}
                            for o in outcomes if o.table is None],
                 "seconds": {o.key: round(o.seconds, 3) for o in outcomes}}
        stages = {o.key: {k: round(v, 4) for k, v in o.stages.items()}
                  for o in outcomes if getattr(o, "stages", None)}
        if stages:
            entry["stages"] = stages
        rows = [o for o in good if len(o.table)]   # a scan without lesions has no rows
        if rows:
            name = f"part-{rows[0].key.rsplit('|', 1)[1]}-{self._number:05d}.parquet"
            table = _arrow_table([o.table for o in rows])
            with _folders.scratch(self.folder) as tmp:
                pq.write_table(table, tmp / name)
                record = _folders.records(tmp, [name])[name]
                os.replace(tmp / name, self.folder / RESULTS_DIR / name)
            _folders.fsync_dir(self.folder / RESULTS_DIR)
            self._number += 1
            entry.update(part=f"{RESULTS_DIR}/{name}", size=record["size"],
                         sha256=record["sha256"], rows=table.num_rows)
        line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.folder / MANIFEST_FILE,
                     os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.entries.append(entry)
        self.done.update(entry["tasks"])
        return entry


def _arrow_table(frames):
    """One Arrow table of the result tables of a batch, in order.

    Tables with the same columns and dtypes (the usual case: the tasks of one
    study) are concatenated in pandas and converted once, which costs a tenth of
    converting each (the per-column metadata of a wide table dominates); tables
    that differ, or that Arrow cannot convert together, are converted one by one
    and their types promoted (an all-missing column of one task takes the type
    of the others').
    """
    import pandas as pd
    import pyarrow as pa

    first = frames[0]
    if all(list(f.columns) == list(first.columns) and f.dtypes.equals(first.dtypes)
           for f in frames[1:]):
        try:
            return pa.Table.from_pandas(pd.concat(frames, ignore_index=True),
                                        preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return pa.concat_tables([pa.Table.from_pandas(f, preserve_index=False) for f in frames],
                            promote_options="permissive")


def _prepare(folder: Path, spec, force, echo) -> list:
    """The valid manifest entries of this study in ``folder`` (locked); clear or refuse others."""
    ours = sorted(e for e in os.listdir(folder) if OUTPUT_NAME.fullmatch(e))
    try:
        record = _folders.read_record(folder / STUDY_FILE, KIND, required=("spec", "versions"))
    except FolderError:
        if not force:
            raise
        record = None
    identity = _identity(spec)
    if force:
        if ours:
            _folders.remove(folder, ours, PART_NAME, owner=OWNER)
            echo(f"--force: removed the earlier study's files ({', '.join(ours)})")
        record = None
    elif record is None and ours:
        raise FolderError(f"{folder} holds study files ({', '.join(ours)}) but no readable "
                          f"{STUDY_FILE}, so the study they belong to is unknown; {_FIX}")
    elif record is not None:
        old = {"spec": record["spec"], "versions": record["versions"]}
        diffs = _folders.differences(old, identity)
        if diffs:
            listed = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6
                                             else "")
            raise ValueError(f"{folder} holds a different study ({listed}); {_FIX}")
    results = folder / RESULTS_DIR
    if os.path.lexists(results) and not stat.S_ISDIR(os.lstat(results).st_mode):
        raise FolderError(f"{results} is not a folder (a symbolic link or a file); remove it "
                          "and run again")
    with _folders.scratch(folder) as tmp:
        if record is None:
            data = json.dumps({"kind": KIND, "version": 1, **identity}, indent=1, sort_keys=True)
            _folders.write_file(tmp, folder, STUDY_FILE, (data + "\n").encode("utf-8"))
            if spec.source:
                _folders.write_file(tmp, folder, SPEC_FILE, spec.source.encode("utf-8"))
        results.mkdir(exist_ok=True)
        entries = _valid_entries(folder, echo)
        data = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
        _folders.write_file(tmp, folder, MANIFEST_FILE, data.encode("utf-8"))
    return entries


def _valid_entries(folder: Path, echo) -> list:
    """Manifest entries whose parts check out; bad and unlisted parts are deleted."""
    entries, listed = [], set()
    for entry in _read_manifest(folder):
        if entry["part"] is not None:
            problem = _part_problem(folder, entry)
            if problem is not None:
                echo(f"{problem}: its {len(entry['tasks'])} task(s) will be run again")
                if os.path.lexists(folder / entry["part"]):
                    os.unlink(folder / entry["part"])
                entry = {"part": None, "tasks": [], "failed": entry["failed"],
                         "seconds": entry.get("seconds", {})}
                if not entry["failed"]:
                    continue
            else:
                listed.add(entry["part"].split("/", 1)[1])
        entries.append(entry)
    for name in sorted(os.listdir(folder / RESULTS_DIR)):
        if PART_NAME.fullmatch(name) and name not in listed:
            echo(f"{RESULTS_DIR}/{name} is not in the manifest (a batch that was being "
                 "written when a run stopped): deleted, its tasks will be run again")
            os.unlink(folder / RESULTS_DIR / name)
    return entries


# --- reading ------------------------------------------------------------------------------

def _record(folder: Path) -> dict:
    record = _folders.read_record(folder / STUDY_FILE, KIND, required=("spec", "versions"))
    if record is None:
        raise ValueError(f"{folder} holds no study ({STUDY_FILE} is missing); run "
                         "'pvcalc study run SPEC --out DIR' first")
    return record


def load_spec(out_dir):
    """The :class:`~pvcalc.study.spec.StudySpec` of the study stored in ``out_dir``."""
    from pvcalc.study.spec import parse_spec

    folder = _folder(out_dir)
    spec = parse_spec(_record(folder)["spec"], origin=str(folder / STUDY_FILE))
    try:
        source = (folder / SPEC_FILE).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return spec
    import dataclasses

    return dataclasses.replace(spec, source=source)


def _read_part(folder: Path, entry):
    import pyarrow as pa
    import pyarrow.parquet as pq

    fd = os.open(folder / entry["part"], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read()
    fix = "run 'pvcalc study run' on the folder again to redo its tasks"
    if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise ValueError(f"{folder / entry['part']} does not match the manifest (its size or "
                         f"SHA-256 changed since it was written); {fix}")
    try:
        return pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{folder / entry['part']} is not readable Parquet ({exc}); {fix}") \
            from None


def _column_order(columns):
    from phantoms.truth import LESION_VARIABLES
    from pvcalc.methods import RESULT_COLUMNS
    from pvcalc.study._execute import CALIBRATION_COLUMNS, FIRST_COLUMNS
    from pvcalc.study.tasks import _PROTOCOL_FIELDS

    known = [*FIRST_COLUMNS, "phantom", "phantom_name", "patient_index", "body",
             "heart_rate_bpm", "velocity_mm_s", "protocol",
             *(f"protocol_{f}" for f in _PROTOCOL_FIELDS), "protocol_mtf50_per_mm",
             "protocol_mas", *CALIBRATION_COLUMNS, "lesion", "lesion_index",
             *(f"true_{v[0]}" for v in LESION_VARIABLES if v[0] != "name"),
             "true_fraction_volume_mm3", "true_diameter_mm", "true_equivalent_diameter_mm",
             "method", *RESULT_COLUMNS[2:]]
    present = set(columns)
    return [c for c in known if c in present] + sorted(present - set(known))


def _pandas_type(arrow_type):
    import pandas as pd
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def read_results(out_dir, *, columns=None):
    """Every result row of the study in ``out_dir``, in a canonical order.

    Parameters
    ----------
    out_dir : str or os.PathLike
        The study's output folder.
    columns : sequence of str, optional
        Only these columns (``task_key``, ``lesion_index`` and ``method`` are
        always read, for the order).

    Returns
    -------
    pandas.DataFrame
        One row per scan x lesion x method of every completed task (a study
        still running or stopped gives the tasks completed so far), sorted by
        ``task_key``, ``lesion_index`` and the spec's method order, with a fresh
        index. Columns in the order of the glossary in ``docs/study.md``
        (method diagnostics last, by name); integers as ``Int64`` and booleans
        as ``boolean`` (nullable). The same study gives the same frame, byte for
        byte, whether it ran in one go or resumed, on one worker or many.

    Raises
    ------
    ValueError
        The folder holds no study, or a part file does not match the manifest
        (it is never mixed in; rerunning the study redoes its tasks).
    """
    import pandas as pd
    import pyarrow as pa

    folder = _folder(out_dir)
    spec = load_spec(folder)
    rank = {name: i for i, name in enumerate(spec.methods)}
    tables = [_read_part(folder, e) for e in _read_manifest(folder) if e.get("part")]
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in
                             ("task_key", "lesion", "lesion_index", "method")})
    table = pa.concat_tables(tables, promote_options="permissive").replace_schema_metadata(None)
    if columns is not None:
        wanted = list(dict.fromkeys(["task_key", "lesion_index", "method", *columns]))
        missing = [c for c in wanted if c not in table.column_names]
        if missing:
            raise ValueError(f"columns {missing} are not in the results; see the glossary in "
                             "docs/study.md")
        table = table.select(wanted)
    df = table.to_pandas(types_mapper=_pandas_type)
    df = df[_column_order(df.columns)]
    df = df.sort_values(["task_key", "lesion_index", "method"], kind="stable",
                        key=lambda s: s.map(rank) if s.name == "method" else s)
    return df.reset_index(drop=True)


def read_failures(out_dir):
    """The tasks of the study in ``out_dir`` that failed and have no results since.

    Returns
    -------
    pandas.DataFrame
        ``task_key``, ``error`` (``"TypeName: message"``), ``traceback`` (its
        last frames) and ``seconds``, sorted by ``task_key``. Rerunning the
        study retries these tasks.
    """
    import pandas as pd

    folder = _folder(out_dir)
    _record(folder)
    entries = _read_manifest(folder)
    done = {k for e in entries for k in e["tasks"]}
    rows = {}
    for e in entries:
        for f in e["failed"]:
            if isinstance(f, dict) and f.get("task_key") not in done:
                rows[f["task_key"]] = {**f, "seconds": (e.get("seconds") or {}).get(
                    f["task_key"], float("nan"))}
    table = pd.DataFrame([rows[k] for k in sorted(rows)],
                         columns=["task_key", "error", "traceback", "seconds"])
    return table.astype({"seconds": float})


def read_scans(out_dir):
    """One row per completed scan (task) of the study in ``out_dir``, lesions or not.

    :func:`read_results` has rows only for lesions; a scan of a phantom without
    lesions (a virtual patient of risk category 0) appears here only, which a
    per-subject total (risk category, reclassification) needs.

    Returns
    -------
    pandas.DataFrame
        ``task_key``, ``condition``, ``repeat``, ``seed``, the condition's
        columns (``phantom`` ... ``protocol_mas``, as in :func:`read_results`)
        and ``n_lesions``, sorted by ``task_key``.
    """
    import pandas as pd

    from pvcalc.study._execute import _constant
    from pvcalc.study.tasks import expand

    folder = _folder(out_dir)
    spec = load_spec(folder)
    done = {k for e in _read_manifest(folder) for k in e["tasks"]}
    tasks = sorted((t for t in expand(spec) if t.key in done), key=lambda t: t.key)
    rows = [{"task_key": t.key, "condition": t.condition.label, "repeat": t.repeat,
             "seed": t.seed, **dict(t.condition.columns),
             "n_lesions": len(t.condition.phantom.lesions)} for t in tasks]
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ("task_key", "n_lesions")})
    return pd.DataFrame({c: pd.concat([pd.Series(_constant(r[c], 1)) for r in rows],
                                      ignore_index=True) for c in rows[0]})

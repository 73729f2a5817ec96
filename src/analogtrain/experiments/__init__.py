"""Paper figures and tables as named, runnable experiments with a pass/fail verdict.

Each experiment module in this package builds :class:`Experiment` objects and calls :func:`register`
at import time; this package imports every one of its modules once (``_discover``), so adding an
experiment is adding a module.  :func:`run_experiment` runs one by name and writes
``<out>/result.json``; :func:`run_seeds` runs one at several seeds and reports the spread of every number
it measures; :func:`cli_reproduce` is the ``analogtrain reproduce`` front.

An experiment's ``run(quick, seed, out)`` returns a dict with at least ``settings``, ``measured``,
``tolerance`` and ``checks`` (a list made with :func:`check`); ``passed`` defaults to "every check
passed".  It may add ``notes`` (str or list) and ``figures`` (file names written into ``out``).
A ``resumable`` experiment (a table whose cells are long training runs, one folder each, trained by
:func:`run_cells`) takes a fourth argument, a :class:`Cells`: with ``resume`` each cell continues from
its checkpoints and a finished cell is read back instead of trained again; ``only`` restricts the run
to some cells (so that several processes can fill one table), and such a partial run writes what it
measured without a verdict; ``jobs`` trains several cells at once in worker processes.
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import math
import os
import pkgutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..checkpoint import make_dir
from ..errors import ConfigError


@dataclass(frozen=True)
class Experiment:
    """A named reproduction: what the paper claims, where, and how to check it."""

    name: str  # e.g. "p1-fig1"
    title: str  # one line
    claim: str  # the paper's claim this run checks, in words
    source: str  # e.g. "P1 Fig. 1, papers.md §3(d)"
    run: Callable[..., dict]  # run(quick, seed, out) -> result dict; run(quick, seed, out, cells) if resumable
    resumable: bool = False


EXPERIMENTS: dict[str, Experiment] = {}


def register(exp: Experiment) -> Experiment:
    """Add ``exp`` to ``EXPERIMENTS`` (a second experiment with the same name is an error)."""
    if exp.name in EXPERIMENTS and EXPERIMENTS[exp.name] is not exp:
        raise ConfigError(f"experiment {exp.name!r} is registered twice")
    EXPERIMENTS[exp.name] = exp
    return exp


def check(name: str, value: float, relation: str, bound: float) -> dict:
    """One verdict line: ``value relation bound`` with relation one of ``<``, ``<=``, ``>``, ``>=``."""
    ops = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
    if relation not in ops:
        raise ConfigError(f"relation {relation!r} is not one of {', '.join(ops)}")
    value, bound = float(value), float(bound)
    ok = not math.isnan(value) and ops[relation](value, bound)
    return {"name": name, "value": value, "relation": relation, "bound": bound, "passed": bool(ok)}


@dataclass(frozen=True)
class Cells:
    """How a table experiment runs its training cells."""

    resume: bool = False  # continue each cell from its checkpoints; a finished cell is read back
    only: tuple = ()  # shell patterns on the cell names (e.g. "mnist/*"); empty = every cell
    verbose: bool = False  # print each cell's epochs as they finish (the command line; cells take hours)
    status: bool = False  # train nothing: report how far each cell's folder has got (TableStatus)
    jobs: int = 1  # cells trained at once, each in a worker process of its own
    threads: int | None = None  # torch/numba threads per cell (None: as set, or the cores shared out among jobs)

    def __post_init__(self):
        for flag, v in (("jobs", self.jobs), ("threads", 1 if self.threads is None else self.threads)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"--{flag} = {v!r} must be a whole number of at least 1")

    def wanted(self, key: str) -> bool:
        return not self.only or any(fnmatch.fnmatchcase(key, p) for p in self.only)


class PartialTable(Exception):
    """A run restricted to some cells (``Cells.only``): what they measured, and no verdict."""

    def __init__(self, result: dict, skipped: list):
        super().__init__(f"{len(skipped)} cell(s) not run")
        self.result, self.skipped = result, skipped


class TableStatus(Exception):
    """Raised by :func:`run_cells` under ``Cells.status``: one row per selected cell, nothing trained."""

    def __init__(self, rows: list):
        super().__init__(f"status of {len(rows)} cell(s)")
        self.rows = rows


def cell_status(key: str, cfg, folder: Path, paper_acc: float) -> dict:
    """How far the cell in ``folder`` has got: its state, epochs done (of the config's), last test accuracy.

    States: ``not started``, ``started`` (a checkpoint inside the first epoch), ``partial`` (some epochs),
    ``done``, ``other config`` (written under another configuration: ``--resume`` would refuse it) and
    ``unreadable`` (its metrics or configuration cannot be read).  ``hours_left``: the epochs still to run at
    the pace of those done (their cumulative training ``seconds``), for a partial cell; else None.
    """
    from ..train import ConfigMismatch, _check_same_config, read_metrics

    rows, state = [], None
    try:
        rows = read_metrics(folder)
        _check_same_config(cfg, folder)
    except ConfigMismatch:
        state = "other config"
    except (ConfigError, ValueError, AttributeError, OSError):  # a torn or foreign metrics or config file
        state = "unreadable"
    last = rows[-1] if rows else {}
    epoch = int(last.get("epoch", 0))
    if state is None:
        started = any(folder.glob("checkpoint-*.pt"))
        state = "done" if epoch >= cfg.epochs else "partial" if epoch else "started" if started else "not started"
    seconds = last.get("seconds")
    left = (seconds / epoch * (cfg.epochs - epoch) / 3600
            if state == "partial" and isinstance(seconds, (int, float)) and seconds > 0 else None)
    # the best epoch shows a run that peaked and then fell back (e.g. an unstable multi-tile cascade)
    best = max((r for r in rows if isinstance(r.get("test_acc"), (int, float))), key=lambda r: r["test_acc"],
               default={})
    return {"cell": key, "state": state, "epoch": epoch, "epochs": cfg.epochs, "test_acc": last.get("test_acc"),
            "train_loss": last.get("train_loss"), "best_test_acc": best.get("test_acc"),
            "best_epoch": best.get("epoch"), "paper_test_acc": paper_acc, "hours_left": left, "folder": str(folder)}


def _status_cells(r: dict) -> list[str]:
    """One status row's fields as text: cell, state, epochs, test acc, best (epoch), train loss, paper, left."""
    num = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    best = "-" if r["best_test_acc"] is None else f"{r['best_test_acc']:.2f} ({r['best_epoch']})"
    left = "-" if r["hours_left"] is None else f"{r['hours_left']:.1f} h"
    return [r["cell"], r["state"], f"{r['epoch']}/{r['epochs']}", num(r["test_acc"], ".2f"), best,
            num(r["train_loss"], ".3f"), num(r["paper_test_acc"], ".2f"), left]


STATUS_HEADER = ["cell", "state", "epochs", "test acc", "best (epoch)", "train loss", "paper", "left"]


def format_status(rows: list, markdown: bool = False) -> str:
    """The rows of :class:`TableStatus` as an aligned text table, or as a Markdown table (for docs)."""
    table = [STATUS_HEADER] + [_status_cells(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(t) + " |" for t in table]
        lines.insert(1, "|" + "|".join(" --- " if i < 2 else " ---: " for i in range(len(STATUS_HEADER))) + "|")
    else:
        w = [max(len(t[i]) for t in table) for i in range(len(STATUS_HEADER))]
        lines = ["  " + "  ".join(v.ljust(w[i]) if i < 2 else v.rjust(w[i]) for i, v in enumerate(t)) for t in table]
    done = sum(r["state"] == "done" for r in rows)
    partial = [r["hours_left"] for r in rows if r["hours_left"] is not None]
    if markdown:
        lines.append("")  # the summary is a paragraph of its own, not a row
    lines.append(f"{done} of {len(rows)} cell(s) done" + (
        f"; the partial ones need about {sum(partial):.1f} h more at their pace so far" if partial else ""))
    return "\n".join(lines)


def run_cells(cells, out: Path, selection: Cells = Cells()) -> tuple[dict, dict]:
    """Train each ``(name, config, paper accuracy)`` cell quietly in its folder ``out/<name>`` ('/' and
    spaces made '_' and '-'); returns the measured accuracies and the result's ``settings`` / ``measured``
    tables (measured next to the paper's numbers).  Raises :class:`PartialTable` after the selected cells
    if ``selection.only`` left some out."""
    acc, paper, files, settings = {}, {}, {}, {}
    names = [key for key, _, _ in cells]
    unmatched = [p for p in selection.only if not any(fnmatch.fnmatchcase(k, p) for k in names)]
    if unmatched:
        raise ConfigError(f"--cells {', '.join(unmatched)} matches no cell; the cells are: {', '.join(names)}")
    folder_of = {key: out / key.replace("/", "_").replace(" ", "-") for key in names}
    if selection.status:
        raise TableStatus([cell_status(key, cfg, folder_of[key], paper_acc) for key, cfg, paper_acc in cells
                           if selection.wanted(key)])
    todo = [(key, cfg, folder_of[key]) for key, cfg, _ in cells if selection.wanted(key)]
    skipped = [key for key, _, _ in cells if not selection.wanted(key)]
    if selection.jobs > 1 and len(todo) > 1:
        summaries = _train_cells_in_parallel(todo, selection)
    else:
        summaries = {}
        for key, cfg, folder in todo:
            summaries[key] = train_cell(key, cfg, folder, selection.resume, selection.verbose, selection.threads)
            if summaries[key]["interrupted"]:
                raise KeyboardInterrupt(f"interrupted: the cell's checkpoint is in {folder}; continue with --resume")
    for key, cfg, paper_acc in cells:
        if key in summaries:
            acc[key], files[key] = summaries[key]["analog"]["test_acc"], str(folder_of[key] / "metrics.csv")
            paper[key], settings[key] = paper_acc, cfg.as_dict()
    result = {"settings": settings, "measured": {"test_acc": acc, "paper_test_acc": paper, "metrics_files": files}}
    if skipped:
        raise PartialTable(result, skipped)
    result["figures"] = [plot_cells(out / "cells.png", {k: folder_of[k] for k in acc}, paper)]
    return acc, result


def _test_curve(folder: Path) -> tuple[list, list]:
    from ..train import read_metrics

    rows = read_metrics(folder)
    return [r["epoch"] for r in rows], [r["test_acc"] for r in rows]


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend, imported when a figure is first drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_cells(path: Path, folders: dict, paper: dict, ends: dict | None = None) -> str:
    """Test accuracy per epoch of each cell (``folders``: name -> folder), one panel per group (the part of
    the name before its first '/'), with the paper's number (if not None) as a star at the cell's last epoch
    (or at ``ends[name]``, the epochs a partial cell will run); returns the file name."""
    plt = pyplot()
    groups: dict[str, list] = {}
    for key in folders:
        groups.setdefault(key.split("/", 1)[0] if "/" in key else "", []).append(key)
    fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), 4.6), squeeze=False)
    for ax, (group, keys) in zip(axes[0], groups.items()):
        colors = plt.get_cmap("tab10" if len(keys) <= 10 else "tab20")
        for i, key in enumerate(keys):
            epochs, accs = _test_curve(folders[key])
            label = key[len(group) + 1:] if group else key
            ax.plot(epochs, accs, color=colors(i), lw=1.2, label=label, marker="o" if len(epochs) < 3 else None,
                    ms=3)
            if paper.get(key) is not None:
                end = (ends or {}).get(key, epochs[-1])
                ax.plot([end], [paper[key]], marker="*", ms=11, color=colors(i), ls="none")
        stars = any(paper.get(key) is not None for key in keys)
        ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=(group + ": " if group else "") +
               ("measured (lines) and paper (stars)" if stars else "test accuracy"))
        ax.legend(fontsize=7, ncol=2 if len(keys) > 6 else 1)
    return save_figure(fig, path)


def train_cell(key: str, cfg, folder: Path, resume: bool, verbose: bool, threads: int | None = None) -> dict | None:
    """Train one table cell into ``folder`` (its lines prefixed with ``key`` if ``verbose``); returns the
    summary of :func:`analogtrain.train.train`, or None for a worker's cell that a stop request (Ctrl-C,
    or another cell's failure) reached before it started.  Module level, so that a worker can run it."""
    from ..train import set_threads, train

    stop = _WORKER_STOP.is_set if _WORKER_STOP is not None else None
    if stop is not None and stop():
        return None
    if threads is not None:
        set_threads(threads)
    log = (lambda line: print(f"{key}: {line.strip()}", flush=True)) if verbose else (lambda *a: None)
    return train(cfg, folder, resume=resume, progress=False, log=log, stop_requested=stop)


_WORKER_STOP = None  # in a worker process: the parallel run's shared stop event


def _worker_setup(stop_event) -> None:
    # The terminal's Ctrl-C goes to the parent only (a worker leaves its process group and ignores it);
    # the parent answers it by setting the shared event, which every cell checks between steps, so each
    # running cell saves a checkpoint exactly once and a cell not yet started does not start.
    global _WORKER_STOP
    _WORKER_STOP = stop_event
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _train_cells_in_parallel(todo: list, selection: Cells) -> dict:
    """Train ``todo`` = [(key, config, folder)] ``selection.jobs`` at a time in spawned worker processes.

    Each cell is seeded by its own config, so the results are those of training the cells one after the
    other (at the same thread count).  Ctrl-C, or a cell that fails, stops every running cell at its next
    step with a checkpoint (as Ctrl-C does in a serial run) and starts no further cell; then the
    interruption or the cell's error is raised.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    jobs = min(selection.jobs, len(todo))
    threads = selection.threads or max(1, (os.cpu_count() or 1) // jobs)
    if selection.verbose:
        print(f"training {len(todo)} cell(s), {jobs} at a time, {threads} thread(s) each", flush=True)
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's and numba's thread pools
    stop = ctx.Event()
    summaries, failed = {}, None
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_setup, initargs=(stop,)) as pool:
        futures = {pool.submit(train_cell, key, cfg, folder, selection.resume, selection.verbose, threads): key
                   for key, cfg, folder in todo}
        try:
            for future in as_completed(futures):
                key = futures[future]
                try:
                    summaries[key] = future.result()
                except Exception as exc:  # re-raised once the other cells have saved and stopped
                    if failed is None:
                        failed = exc
                        stop.set()
                        print(f"{key}: failed ({exc}); stopping the other cells at their checkpoints", flush=True)
        except KeyboardInterrupt:
            stop.set()
            pool.shutdown(wait=True)
            raise KeyboardInterrupt("interrupted: each running cell saved a checkpoint in its folder; "
                                    "continue with --resume") from None
    if failed is not None:
        raise failed
    stopped = [key for key, s in summaries.items() if s is None or s["interrupted"]]
    if stopped:
        raise KeyboardInterrupt(f"interrupted: {', '.join(stopped)} did not finish; continue with --resume")
    return summaries


def save_figure(fig, path: Path, dpi: int = 110) -> str:
    """Grid every axis, lay out, write ``path`` and close ``fig``; returns the file name for ``figures``."""
    import matplotlib.pyplot as plt

    for ax in fig.axes:
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path).name


def get_experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        known = ", ".join(sorted(EXPERIMENTS)) or "(none)"
        raise ConfigError(f"unknown experiment {name!r}; known experiments: {known}")
    return EXPERIMENTS[name]


def _jsonable(obj):
    """Plain JSON types: numpy/torch scalars and arrays become floats/lists, NaN/inf become strings."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else str(v)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json_atomic(path: Path, data: dict) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_jsonable(data), fh, indent=2, sort_keys=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def table_status(name: str, out, quick: bool = False, seed: int = 0, only: tuple = ()) -> list[dict]:
    """Rows of :func:`cell_status` for the cells of table experiment ``name`` in folder ``out``; trains and
    writes nothing."""
    exp = get_experiment(name)
    if not exp.resumable:
        raise ConfigError(f"experiment {name!r} has no training cells to report on; the tables with training "
                          f"cells: {', '.join(sorted(e.name for e in EXPERIMENTS.values() if e.resumable))}")
    try:
        exp.run(bool(quick), int(seed), Path(out), Cells(only=tuple(only), status=True))
    except TableStatus as status:
        return status.rows
    raise RuntimeError(f"experiment {name!r} did not build its cells through run_cells")


def run_experiment(name: str, quick: bool = False, seed: int = 0, out=None, cells: Cells | None = None) -> dict:
    """Run experiment ``name`` into folder ``out`` (default ``runs/<name>``), write ``out/result.json``
    and return the result dict.  Unknown ``name`` raises ConfigError listing the known ones.
    ``cells``: resume and/or restrict a table experiment's training cells (:class:`Cells`)."""
    exp = get_experiment(name)
    if cells is not None and (cells.resume or cells.only or cells.jobs > 1) and not exp.resumable:
        tables = ", ".join(sorted(e.name for e in EXPERIMENTS.values() if e.resumable))
        raise ConfigError(f"experiment {name!r} has no training cells to resume, select or run in parallel (it "
                          f"reruns in minutes); the tables with training cells: {tables}")
    out = make_dir(out if out is not None else Path("runs") / name)
    t0 = time.perf_counter()
    try:
        res = dict(exp.run(bool(quick), int(seed), out, cells or Cells()) if exp.resumable
                   else exp.run(bool(quick), int(seed), out))
    except PartialTable as part:
        res = dict(part.result, checks=[], passed=False, partial=True,
                   notes=[f"partial run: {len(part.skipped)} cell(s) not selected ({', '.join(part.skipped)}); "
                          "the verdict needs every cell: run again without --cells, with --resume"])
    seconds = time.perf_counter() - t0
    checks = res.pop("checks", [])
    passed = res.pop("passed", bool(checks) and all(c["passed"] for c in checks))
    result = {
        "experiment": exp.name,
        "title": exp.title,
        "source": exp.source,
        "claim": exp.claim,
        "settings": res.pop("settings", {}),
        "measured": res.pop("measured", {}),
        "tolerance": res.pop("tolerance", {}),
        "checks": checks,
        "passed": bool(passed),
        "quick": bool(quick),
        "seed": int(seed),
        "seconds": round(seconds, 3),
    }
    result.update(res)  # notes, figures, anything else the experiment reports
    write_json_atomic(out / "result.json", result)
    return _jsonable(result)


MAX_SEEDS = 1000  # runs per command; beyond that, split the seeds over several commands


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"``, ``"0-4"`` or a mix (``"0-2,7"``) as a list of distinct seeds, in order."""
    seeds = []
    for part in str(text).split(","):
        lo, sep, hi = part.strip().partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else [int(lo)]
        except ValueError:
            span = []
        if len(span) > MAX_SEEDS:
            raise ConfigError(f"--seeds {text!r}: {len(span)} seeds in {part.strip()!r}; at most {MAX_SEEDS} at once")
        if not span or min(span) < 0:
            raise ConfigError(f"--seeds {text!r}: {part.strip()!r} is not a seed (a whole number >= 0) or a range "
                              "of them (a-b with a <= b); e.g. --seeds 0,1,2 or --seeds 0-2")
        seeds += [s for s in span if s not in seeds]
    return seeds


def spread(values: list) -> dict:
    """Mean, sample standard deviation (n - 1; 0 for one value), min and max of ``values``, and n."""
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": len(v)}


def run_seeds(name: str, seeds, quick: bool = False, out=None, cells: Cells | None = None,
              log: Callable[[str], None] = lambda line: None) -> dict:
    """Run experiment ``name`` once per seed, each into ``out/seed-S`` with its own ``result.json`` and
    verdict, then write ``out/result.json`` with what the seeds show together: every number the runs
    measured as mean, sample std, min and max over the seeds (``measured``; e.g. a table's per-cell test
    accuracy next to the paper's, which report means of 3 runs), each check's values and how many seeds
    passed it, and ``passed`` only if every seed passed.  ``cells`` applies to each seed's table (so
    ``--resume`` continues every seed's cells).  ``log`` gets a line as each seed starts and ends."""
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"seeds {seeds} must be distinct whole numbers >= 0, at least one")
    exp = get_experiment(name)
    out = make_dir(out if out is not None else Path("runs") / name)
    t0 = time.perf_counter()
    runs = {}
    for s in seeds:
        log(f"seed {s}: running into {out / f'seed-{s}'}")
        runs[s] = run_experiment(name, quick=quick, seed=s, out=out / f"seed-{s}", cells=cells)
        verdict = "PARTIAL" if runs[s].get("partial") else "PASSED" if runs[s]["passed"] else "FAILED"
        log(f"seed {s}: {verdict} ({runs[s]['seconds']:.1f} s)")
    values: dict = {}
    for r in runs.values():
        for key, v in _flatten(r["measured"]):
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                values.setdefault(key, []).append(v)
    checks: dict = {}
    for s, r in runs.items():
        for c in r["checks"]:
            row = checks.setdefault(c["name"], {"name": c["name"], "relation": c["relation"], "bound": c["bound"],
                                                "values": {}, "passed_seeds": []})
            row["values"][s] = c["value"]
            if c["passed"]:
                row["passed_seeds"].append(s)
    result = {
        "experiment": exp.name, "title": exp.title, "source": exp.source, "claim": exp.claim,
        "seeds": seeds, "quick": bool(quick),
        "measured": {key: spread(v) for key, v in values.items()},
        "checks": list(checks.values()),
        "passed_seeds": [s for s, r in runs.items() if r["passed"]],
        "passed": all(r["passed"] for r in runs.values()),
        "partial": any(r.get("partial", False) for r in runs.values()),
        "results": {s: f"seed-{s}/result.json" for s in seeds},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    write_json_atomic(out / "result.json", result)
    return _jsonable(result)


# ---- command line --------------------------------------------------------------------------------
def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows += _flatten(v, key + ".")
        else:
            rows.append((key, v))
    return rows


def format_summary(result: dict) -> str:
    """A short table of the measured numbers and the checks, ending in PASSED or FAILED."""
    lines = [f"{result['experiment']}: {result['title']}  ({result['source']})",
             f"claim: {result['claim']}", "", "measured:"]
    rows = _flatten(result.get("measured", {}))
    width = max((len(k) for k, _ in rows), default=0)
    lines += [f"  {k:<{width}}  {_fmt(v)}" for k, v in rows]
    if result.get("checks"):
        lines.append("")
        lines.append("checks:")
        w2 = max(len(c["name"]) for c in result["checks"])
        for c in result["checks"]:
            mark = "ok  " if c["passed"] else "FAIL"
            lines.append(f"  {mark} {c['name']:<{w2}}  {_fmt(c['value'])} {c['relation']} {_fmt(c['bound'])}")
    mode = "quick" if result.get("quick") else "full"
    lines.append("")
    verdict = "PARTIAL: no verdict" if result.get("partial") else "PASSED" if result["passed"] else "FAILED"
    lines.append(f"{verdict}  ({mode}, seed {result['seed']}, {result['seconds']:.1f} s)")
    return "\n".join(lines)


def format_seeds_summary(result: dict) -> str:
    """:func:`run_seeds`' result: each number as mean +- std [min, max] over the seeds, each check's
    value per seed and how many seeds passed it, and the verdict of every seed."""
    seeds = result["seeds"]
    lines = [f"{result['experiment']}: {result['title']}  ({result['source']})", f"claim: {result['claim']}", "",
             f"measured over seeds {', '.join(map(str, seeds))} (mean +- std [min, max]):"]
    rows = list(result["measured"].items())
    width = max((len(k) for k, _ in rows), default=0)
    lines += [f"  {k:<{width}}  {_fmt(m['mean'])} +- {_fmt(m['std'])}  [{_fmt(m['min'])}, {_fmt(m['max'])}]"
              + (f"  (n = {m['n']})" if m["n"] != len(seeds) else "") for k, m in rows]
    if result["checks"]:
        lines += ["", "checks (seeds passed: value per seed):"]
        w2 = max(len(c["name"]) for c in result["checks"])
        for c in result["checks"]:
            vals = ", ".join(_fmt(v) for v in c["values"].values())
            lines.append(f"  {len(c['passed_seeds'])}/{len(c['values'])}  {c['name']:<{w2}}  {vals} "
                         f"{c['relation']} {_fmt(c['bound'])}")
    failed = [s for s in seeds if s not in result["passed_seeds"]]
    verdict = "PARTIAL: no verdict" if result.get("partial") else "PASSED on every seed" if not failed else (
        f"FAILED on seed(s) {', '.join(map(str, failed))} ({len(seeds) - len(failed)} of {len(seeds)} passed)")
    lines += ["", f"{verdict}  ({'quick' if result['quick'] else 'full'}, {result['seconds']:.1f} s)"]
    return "\n".join(lines)


def list_experiments() -> list[Experiment]:
    return [EXPERIMENTS[k] for k in sorted(EXPERIMENTS)]


def _print_status(name: str, out: Path, seed: int, args) -> list[dict]:
    rows = table_status(name, out, quick=bool(getattr(args, "quick", False)), seed=seed,
                        only=tuple(getattr(args, "cells", None) or ()))
    print(f"{name} in {out}:" if out.is_dir() else f"{name}: {out} does not exist (yet): no cell has started")
    print(format_status(rows, markdown=bool(getattr(args, "markdown", False))))
    return rows


def cli_reproduce(args) -> int:
    """``analogtrain reproduce``: ``args.list`` prints the experiments; else runs ``args.name``.

    ``args`` has ``name`` (str or None), ``list`` (bool), ``quick`` (bool), ``seed`` (int or None: 0), or
    ``seeds`` (text such as "0-2": one run per seed, :func:`run_seeds`), ``out`` (folder or None ->
    ``runs/<name>``), ``resume`` (bool), ``cells`` (patterns or None), ``jobs``, ``threads`` and the
    ``status`` / ``markdown`` / ``plot`` report flags.  Returns 0 if the experiment passed (on every seed), 1
    if it failed.
    """
    name = getattr(args, "name", None)
    if getattr(args, "list", False) or name is None:
        exps = list_experiments()
        w1 = max((len(e.name) for e in exps), default=0)
        w2 = max((len(e.source) for e in exps), default=0)
        for e in exps:
            print(f"{e.name:<{w1}}  {e.source:<{w2}}  {e.title}")
        if name is None and not getattr(args, "list", False):
            print("\nname an experiment to run it, e.g. `analogtrain reproduce p1-fig1 --quick`")
        return 0
    out = getattr(args, "out", None)
    out = Path(out) if out is not None else Path("runs") / name
    for flag in ("markdown", "plot"):
        if getattr(args, flag, None) and not getattr(args, "status", False):
            raise ConfigError(f"--{flag} goes with --status; add --status")
    seed = getattr(args, "seed", None)
    seeds = parse_seeds(args.seeds) if getattr(args, "seeds", None) is not None else []
    if seeds and seed is not None:
        raise ConfigError("give --seed S (one run) or --seeds LIST (one run per seed), not both")
    from ..config import MAX_SEED
    from ..errors import check_int

    seed = check_int("--seed", int(seed or 0), 0, MAX_SEED)
    if getattr(args, "status", False):
        for flag in ("resume", "jobs"):
            if getattr(args, flag, None):
                raise ConfigError(f"--status reports on a table and trains nothing; drop --{flag}")
        if seeds:  # one table per seed, from its folder out/seed-S
            if getattr(args, "plot", None):
                raise ConfigError("--plot draws one seed's cells: use --seed S --out DIR/seed-S instead of --seeds")
            for s in seeds:
                print(f"seed {s}:")
                _print_status(name, out / f"seed-{s}", s, args)
            return 0
        rows = _print_status(name, out, seed, args)
        plot = getattr(args, "plot", None)
        if plot:
            started = [r for r in rows if r["epoch"] > 0 and r["state"] != "unreadable"]
            if not started:
                raise ConfigError(f"--plot: no cell of {name} in {out} has finished an epoch yet")
            plot_cells(Path(plot), {r["cell"]: Path(r["folder"]) for r in started},
                       {r["cell"]: r["paper_test_acc"] for r in started}, {r["cell"]: r["epochs"] for r in started})
            print(f"figure: {plot}")
        return 0
    cells = Cells(resume=bool(getattr(args, "resume", False)), only=tuple(getattr(args, "cells", None) or ()),
                  verbose=True, jobs=1 if getattr(args, "jobs", None) is None else args.jobs,
                  threads=getattr(args, "threads", None))
    quick = bool(getattr(args, "quick", False))
    if seeds:
        result = run_seeds(name, seeds, quick=quick, out=out, cells=cells, log=lambda line: print(line, flush=True))
        print(format_seeds_summary(result))
        print(f"result: {out / 'result.json'} (each seed's: {out}/seed-S/result.json)")
        return 0 if result["passed"] or result["partial"] else 1
    result = run_experiment(name, quick=quick, seed=seed, out=out, cells=cells)
    print(format_summary(result))
    print(f"result: {out / 'result.json'}")
    for fig in result.get("figures", []):
        print(f"figure: {out / fig}")
    return 0 if result["passed"] or result.get("partial") else 1  # a --cells run did what it was asked


# ---- discovery: every module of this package registers its experiments on import ----------------------
def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_discover()

__all__ = [
    "EXPERIMENTS", "Experiment", "check", "cli_reproduce", "format_seeds_summary", "format_status", "format_summary",
    "get_experiment", "list_experiments", "parse_seeds", "pyplot", "register", "run_experiment", "run_seeds", "spread",
    "table_status", "write_json_atomic",
]

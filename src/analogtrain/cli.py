"""Command line: ``analogtrain device list|show``, ``train``, ``cost`` and ``reproduce``.

The CLI holds no science: it parses, calls the library, prints.  A bad configuration
(analogtrain.errors.ConfigError) ends with ``error: ...`` on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from .config import parse_sets
from .errors import ConfigError, TrainingDiverged, check_choice


# ---- device -----------------------------------------------------------------------------------------
def _device_list(args) -> int:
    from .devices import FAMILIES, list_presets

    print("families:")
    for name, cls in FAMILIES.items():
        print(f"  {name:22s} {cls.__doc__.strip().splitlines()[0]}")
        print(f"  {'':22s} source: {cls.source}")
    print("\npresets:")
    for p in list_presets():
        print(f"  {p.name:22s} {p.description}")
        print(f"  {'':22s} source: {p.source}")
    return 0


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


def _device_show(args) -> int:
    from .devices import make_device

    dev = make_device(args.name, **parse_sets(args.set))
    info = dev.describe()
    print(f"device:          {args.name}")
    print(f"family:          {dev.name}")
    print(f"source:          {dev.source}")
    print(f"symmetric point: {_fmt(info['symmetric_point'])}")
    print(f"bounds:          [{_fmt(dev.w_min)}, {_fmt(dev.w_max)}]")
    print(f"dw_min:          {_fmt(dev.dw_min)}")
    print(f"n_states:        {_fmt(dev.n_states) if math.isfinite(dev.n_states) else 'inf'}")
    print("parameters:")
    for key, value in info.items():
        if key not in ("family", "symmetric_point", "n_states"):
            print(f"  {key:16s} {_fmt(value)}")
    if args.out:
        from .checkpoint import make_dir
        from .config import MAX_SEED
        from .errors import check_int
        from .plots import plot_device

        check_choice("--out's file type", Path(args.out).suffix.lower(), (".png", ".pdf", ".svg"))
        check_int("--seed", args.seed, 0, MAX_SEED)
        make_dir(Path(args.out).parent)
        plot_device(dev, args.out, seed=args.seed)
        print(f"plot written to {args.out}")
    return 0


# ---- algorithm -------------------------------------------------------------------------------------------
def _summary(cls) -> str:
    """The first line of a class's docstring, without its pointer to the module's."""
    line = (cls.__doc__ or "(no description)").strip().splitlines()[0]
    return line.replace("See module docstring.", "").strip()


def _algorithm_list(args) -> int:
    from .algorithms import ALGORITHMS

    for name, cls in ALGORITHMS.items():
        print(f"  {name:16s} {_summary(cls)}")
    print("\noptions of one: analogtrain algorithm show NAME; choose one: analogtrain train --set algorithm=NAME")
    return 0


def _option_default(v) -> str:
    return str(v).lower() if isinstance(v, bool) else _fmt(v)


def algorithm_options_markdown(name: str) -> str:
    """The option table of algorithm ``name`` as markdown (``algorithm show --markdown``, docs/algorithms.md)."""
    from .algorithms import ALGORITHMS

    cls = ALGORITHMS[check_choice("algorithm", name, ALGORITHMS)]
    if not cls.OPTIONS:
        return "(no options)\n"
    helps = {k: o.help.replace("|", "\\|") for k, o in cls.OPTIONS.items()}  # a bare bar would end the cell
    rows = [f"| `{k}` | {_option_default(o.default)} | {o.allowed()} | {helps[k]} |" for k, o in cls.OPTIONS.items()]
    return "\n".join(["| option | default | allowed | what it does |", "| --- | --- | --- | --- |", *rows]) + "\n"


def _algorithm_show(args) -> int:
    import inspect

    from .algorithms import ALGORITHMS

    if args.markdown:
        print(algorithm_options_markdown(args.name), end="")
        return 0
    cls = ALGORITHMS[check_choice("algorithm", args.name, ALGORITHMS)]
    print(f"algorithm: {args.name}")
    print(f"what:      {_summary(cls)}")
    print(f"source:    {inspect.getsourcefile(cls)} (equations and paper mapping in its docstring)")
    if not cls.OPTIONS:
        print("options:   none")
        return 0
    print(f"options (--set algorithm.OPTION=VALUE; in Python "
          f"AnalogLayerConfig(algorithm={args.name!r}, options={{...}})):")
    width = max(map(len, cls.OPTIONS))
    for k, o in cls.OPTIONS.items():
        print(f"  {k:{width}s}  {_option_default(o.default):8s}  {o.allowed()}")
        print(f"  {'':{width}s}  {o.help}")
    return 0


# ---- cost ------------------------------------------------------------------------------------------------
def _cost(args) -> int:
    from .cost import hardware, network_costs
    from .models import build_model

    hw = hardware(**parse_sets(args.set))
    costs = network_costs(build_model(args.model), hw, args.tiles)
    arrays = ", ".join(f"{r}x{c}" for r, c in costs["arrays"])
    print(f"{args.model}: arrays {arrays}; N = {costs['n']}; one set of arrays {costs['area_mm2']:.4g} mm^2")
    print(f"hardware: {', '.join(f'{k} {v:g}' for k, v in vars(hw).items())}")
    tiles = "P3's bound, infinitely many tiles" if args.tiles is None else f"{args.tiles} tiles"
    print(f"update latency per sample, ns (multi-tile: {tiles}):")
    print(f"  {'algorithm':<16} {'pulses':>9} {'reads':>9} {'digital':>9} {'total':>9}")
    for name, c in costs["latency_ns"].items():
        print(f"  {name:<16} " + " ".join(f"{c[k]:9.1f}" for k in ("pulses", "reads", "digital", "total")))
    return 0


# ---- reproduce -----------------------------------------------------------------------------------------
def _reproduce(args) -> int:
    from analogtrain.experiments import cli_reproduce  # written elsewhere; imported only when used

    return cli_reproduce(args)


# ---- train ------------------------------------------------------------------------------------------
def _train(args) -> int:
    from .config import build_config
    from .train import train

    sets = parse_sets(args.set)
    if args.data_dir:
        sets["data_dir"] = args.data_dir
    if args.sweep or args.seeds is not None:
        return _train_grid(args, sets)
    for flag in ("status", "jobs"):
        if getattr(args, flag):
            raise ConfigError(f"--{flag} goes with --sweep or --seeds (several runs)")
    config = args.config
    if args.resume and config is None and (Path(args.out) / "config.toml").exists():
        config = Path(args.out) / "config.toml"  # the run's own settings; --set may change resumable ones
    cfg = build_config(config, sets)
    summary = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    if summary["interrupted"]:
        return 130
    line = f"test accuracy: {cfg.algorithm} {summary['analog']['test_acc']:.2f}%"
    if summary["digital"]:
        line += f" | digital-sgd {summary['digital']['test_acc']:.2f}%"
    print(line)
    print(f"metrics, config, checkpoints and training.png in {args.out}")
    return 0


def _grid_axes(items, sets: dict) -> list[tuple[str, list]]:
    """``--sweep KEY=V1,V2`` items as ``[(key, [values])]``, each value parsed as a ``--set`` value."""
    from .config import parse_value

    axes = []
    for item in items or ():
        key, sep, text = item.partition("=")
        key, values = key.strip(), [v.strip() for v in text.split(",") if v.strip()]
        if not sep or not key or not values:
            raise ConfigError(f"--sweep expects KEY=V1,V2,... (values split at commas), got {item!r}")
        if key == "seed":
            raise ConfigError("--sweep seed=...: give the seeds with --seeds (e.g. --seeds 0-2)")
        if key in sets or key in (k for k, _ in axes):
            raise ConfigError(f"--sweep {key}: {key} is already set (by --set or another --sweep)")
        axes.append((key, [parse_value(v) for v in values]))
    return axes


def _train_grid(args, sets: dict) -> int:
    """Every combination of the ``--sweep`` values at every ``--seeds`` seed, one run folder each, through
    the reproduction tables' cell runner (``--resume``, ``--jobs``, ``--status``, Ctrl-C as there); then the
    final test accuracy of each combination over the seeds, and ``grid.json`` / ``cells.png`` in ``--out``."""
    from itertools import product

    from .config import build_config
    from .experiments import Cells, TableStatus, format_status, parse_seeds, run_cells, spread, write_json_atomic
    from .models import build_model
    from .train import layer_config, read_metrics

    axes = _grid_axes(args.sweep, sets)
    seeds = parse_seeds(args.seeds) if args.seeds is not None else [build_config(args.config, sets).seed]
    if args.seeds is not None and "seed" in sets:
        raise ConfigError("give --set seed=S (one seed) or --seeds LIST, not both")
    combos = [dict(zip([k for k, _ in axes], values)) for values in product(*[v for _, v in axes])]
    label = lambda combo: " ".join(f"{k}={v}" for k, v in combo.items()) or "run"  # noqa: E731
    # the cell name's part before '/' groups cells.png's panels: one panel per seed, a line per combination
    cells = [(f"seed={seed}/{label(combo)}", build_config(args.config, {**sets, **combo, "seed": seed}), None)
             for seed in seeds for combo in combos]
    for _, cfg, _ in cells[:len(combos)]:  # build each combination's model once: a bad value fails before any run
        build_model(cfg.model, analog=layer_config(cfg), seed=cfg.seed)
    out = Path(args.out)
    selection = Cells(resume=args.resume, verbose=True, status=args.status, jobs=1 if args.jobs is None else args.jobs,
                      threads=args.threads)
    if not args.status:
        print(f"{len(cells)} run(s): {len(combos)} configuration(s) x {len(seeds)} seed(s) -> {out}")
        if cells[0][1].compare_digital and len(combos) > 1:
            print("note: every run also trains its digital baseline (compare_digital); --set compare_digital=false "
                  "skips it, and --sweep algorithm=digital-sgd,... trains it once per seed")
    try:
        acc, result = run_cells(cells, out, selection)
    except TableStatus as status:
        print(format_status(status.rows))
        return 0

    def last_epoch(key: str) -> dict:  # the run's last analog metrics row
        return read_metrics(Path(result["measured"]["metrics_files"][key]).parent)[-1]

    runs = {}
    for combo in combos:
        keys = {seed: f"seed={seed}/{label(combo)}" for seed in seeds}
        runs[label(combo)] = {"settings": combo, "test_acc": {s: acc[k] for s, k in keys.items()},
                              "pulses": {s: last_epoch(k)["pulses"] for s, k in keys.items()},
                              **spread(list(acc[k] for k in keys.values()))}
    write_json_atomic(out / "grid.json", {"sweep": dict(axes), "seeds": seeds, "runs": runs,
                                          "figures": result["figures"]})
    width = max(len(k) for k in runs)
    print(f"\nfinal test accuracy (%) over seed(s) {', '.join(map(str, seeds))}, and pulses per run:")
    for name, r in runs.items():
        print(f"  {name:<{width}}  {r['mean']:6.2f} +- {r['std']:5.2f}   ("
              + ", ".join(f"{a:.2f}" for a in r["test_acc"].values())
              + f")   {sum(r['pulses'].values()) / len(seeds):.3g} pulses")
    print(f"grid.json, cells.png and one folder per run in {out}")
    return 0


THREADS_HELP = "torch and numba threads (default: all cores; 1 for each of several jobs side by side)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="analogtrain", description="Training on simulated analog in-memory hardware")
    sub = parser.add_subparsers(dest="command", required=True)

    device = sub.add_parser("device", help="inspect device models and presets")
    dsub = device.add_subparsers(dest="device_command", required=True)
    dl = dsub.add_parser("list", help="list device families and presets")
    dl.set_defaults(func=_device_list)
    ds = dsub.add_parser("show", help="show one device (family or preset) and optionally plot it")
    ds.add_argument("name", help="preset or family name (see `analogtrain device list`)")
    ds.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a device field (repeatable)")
    ds.add_argument("--out", metavar="FILE.png", help="write response and pulse-trace plot")
    ds.add_argument("--seed", type=int, default=0, help="seed of the sampled elements in the plot")
    ds.set_defaults(func=_device_show)

    algo = sub.add_parser("algorithm", help="list the training algorithms and their options")
    asub = algo.add_subparsers(dest="algorithm_command", required=True)
    asub.add_parser("list", help="list the algorithms").set_defaults(func=_algorithm_list)
    ash = asub.add_parser("show", help="one algorithm's options: default, allowed values, what each does")
    ash.add_argument("name", help="algorithm name (see `analogtrain algorithm list`)")
    ash.add_argument("--markdown", action="store_true", help="print the option table as markdown")
    ash.set_defaults(func=_algorithm_show)

    tr = sub.add_parser("train", help="train a model on analog tiles (default: FCN on the embedded MNIST subset)")
    tr.add_argument("config", nargs="?", metavar="CONFIG.toml", help="run configuration (every field optional)")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override a config field, e.g. lr=0.1, device=reram-om, device.w_max=0.78 (repeatable)")
    tr.add_argument("--out", metavar="DIR", help="run folder (default runs/train; runs/grid with --sweep or --seeds)")
    tr.add_argument("--resume", action="store_true",
                    help="continue from the checkpoints in --out (with its config.toml unless CONFIG is given)")
    tr.add_argument("--data-dir", metavar="DIR", help="dataset folder (default $ANALOGTRAIN_DATA or the user cache)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")
    tr.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    tr.add_argument("--sweep", action="append", metavar="KEY=V1,V2",
                    help="train every value (repeatable: every combination), one run folder each in --out, "
                         "e.g. --sweep algorithm=agad,erider; prints each one's final test accuracy")
    tr.add_argument("--seeds", metavar="LIST",
                    help="train at each seed (e.g. 0-2) and give mean +- std over them (with or without --sweep)")
    tr.add_argument("--jobs", type=int, metavar="N",
                    help="with --sweep/--seeds: train N runs at once, each in its own process")
    tr.add_argument("--status", action="store_true",
                    help="with --sweep/--seeds: train nothing, list how far each run in --out has got")
    tr.set_defaults(func=_train)

    cost = sub.add_parser("cost", help="update latency and crossbar area of each algorithm on a model (P3 App. I)")
    cost.add_argument("--model", default="lenet5", help="fcn, lenet5 or resnet20 (default lenet5)")
    cost.add_argument("--set", action="append", metavar="FIELD=VALUE",
                      help="a hardware field: t_pulse, t_mvm, pulses, tflops, arrays_sharing, transfer_every, "
                           "mp_batch (repeatable)")
    cost.add_argument("--tiles", type=int, metavar="T", help="multi-tile's number of tiles (default: P3's bound)")
    cost.set_defaults(func=_cost)

    rep = sub.add_parser("reproduce", help="run a paper experiment by name")
    rep.add_argument("name", nargs="?", metavar="NAME", help="experiment name (see --list)")
    rep.add_argument("--list", action="store_true", help="list the experiments")
    rep.add_argument("--quick", action="store_true", help="short smoke-test version")
    rep.add_argument("--seed", type=int, help="the run's seed (default 0)")
    rep.add_argument("--seeds", metavar="LIST",
                     help="one run per seed (e.g. 0,1,2 or 0-2), each into OUT/seed-S, and OUT/result.json with "
                          "every measured number as mean +- std [min, max] over the seeds")
    rep.add_argument("--threads", type=int, metavar="N", help=THREADS_HELP)
    rep.add_argument("--out", metavar="DIR", help="output directory (default runs/NAME)")
    rep.add_argument("--resume", action="store_true",
                     help="continue the training cells of a table (p1-mnist-*, p2-fig4, p3-table1, p5-tables, "
                          "p5-fig2, p5-fig5) from their checkpoints in --out; finished cells are read back, not retrained")
    rep.add_argument("--cells", action="append", metavar="PATTERN",
                     help="run only the table cells whose names match (shell pattern, e.g. 'mnist/*'; repeatable), "
                          "e.g. to fill one table from several processes; such a run has no verdict")
    rep.add_argument("--jobs", type=int, metavar="N",
                     help="train N table cells at once, each in its own process (default 1); --threads then "
                          "counts per process (default: the cores shared out)")
    rep.add_argument("--status", action="store_true",
                     help="train nothing: list each table cell in --out with its state (done, partial, started, "
                          "not started, other config), epochs so far, last and best test accuracy next to the "
                          "paper's, and hours left")
    rep.add_argument("--markdown", action="store_true", help="with --status: print the table as Markdown")
    rep.add_argument("--plot", metavar="FILE.png",
                     help="with --status: draw the test accuracy per epoch of every started cell so far")
    rep.set_defaults(func=_reproduce)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "command", None) == "reproduce" and args.out is None and args.name:
        args.out = f"runs/{args.name}"
    if getattr(args, "command", None) == "train" and args.out is None:
        args.out = "runs/grid" if args.sweep or args.seeds is not None else "runs/train"
    try:
        if getattr(args, "threads", None) is not None:
            from .train import set_threads

            set_threads(args.threads)
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:  # a run (or a reproduction's cell) whose loss became NaN or inf
        print(f"error: training diverged: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # a reproduction's training cell was stopped with Ctrl-C
        print(str(exc) or "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output stopped early (`... --status | head`): nothing went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush stays quiet
        return 141  # as a shell reports a writer ended by SIGPIPE


if __name__ == "__main__":
    sys.exit(main())

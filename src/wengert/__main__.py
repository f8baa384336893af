"""Command line: ``python -m wengert bench ...`` and ``python -m wengert demo [folder]``.

Example:
    python -m wengert bench --quick
    python -m wengert bench --engines wengert,micrograd,torch --workloads mlp,rosenbrock-100 \
        --json results.json --plot results.png
    python -m wengert bench --engine my_engine:MyEngine
"""

import argparse
import sys


def _names(choices, what):
    """An argparse type for a comma-separated list drawn from ``choices``."""

    def parse(text):
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown)}; choose from {', '.join(choices)}"
            )
        if not names:
            raise argparse.ArgumentTypeError(f"no {what} given")
        return names

    return parse


def _engine_spec(text):
    """An argparse type for ``module:Class``."""
    module, colon, name = text.partition(":")
    if not (colon and module and name):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not of the form module:Class (e.g. my_engine:MyEngine)")
    return text


def _add_bench(commands):
    from wengert import _bench, workloads

    bench = commands.add_parser(
        "bench",
        help="time wengert against plain floats and other autodiff engines",
        description=(
            "Time every engine on the standard workloads, each (engine, workload)\n"
            "cell in a fresh process: record (forward), backward, total and replay,\n"
            "in nanoseconds per elementary op, next to plain-float evaluation timed\n"
            "in the same process. Values and gradients are checked against plain\n"
            "floats, wengert and the pure-Python reference engine first; a mismatch\n"
            "makes the exit status 1. Engines that are not installed are skipped."
        ),
        epilog="workloads:\n" + "\n".join(
            f"  {w.name:<16} {w.description}" for w in workloads.WORKLOADS.values()
        ) + "\n\nengines:\n  " + ", ".join(_bench.ENGINES)
        + "\n\nYour own engine: subclass wengert.bench.Engine and pass --engine module:Class.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--quick", action="store_true",
        help="5 repeats of >= 20 ms instead of 7 of >= 100 ms, and leave out chain-1m "
             "unless named in --workloads (about a minute)",
    )
    bench.add_argument(
        "--workloads", type=_names(list(workloads.WORKLOADS), "workload"),
        metavar="A,B", help="comma-separated workloads (default: all)",
    )
    bench.add_argument(
        "--engines", type=_names(list(_bench.ENGINES), "engine"),
        metavar="A,B",
        help="comma-separated built-in engines (default: all; those not installed "
             "are skipped)",
    )
    bench.add_argument(
        "--engine", type=_engine_spec, action="append", default=[], metavar="MODULE:CLASS",
        help="also run your own engine, a wengert.bench.Engine subclass (repeatable); "
             "without --engines, only floats and wengert run beside it",
    )
    bench.add_argument("--json", metavar="PATH",
                       help="also write the results (versions, machine, raw repeats) to PATH")
    bench.add_argument("--plot", metavar="PATH",
                       help="also draw a PNG bar chart to PATH (needs matplotlib)")
    bench.add_argument("--timeout", type=float, metavar="SECONDS",
                       help="stop a cell after this long (default: 300, --quick: 60)")
    bench.add_argument("--in-process", action="store_true",
                       help="run the cells in this process, not one fresh process each "
                            "(for debugging an adapter)")


def _add_demo(commands):
    demo = commands.add_parser(
        "demo", help="train a small MLP and draw its pictures (wengert._demo)")
    demo.add_argument("folder", nargs="?", default="wengert-demo",
                      help="where to write the pictures (default: wengert-demo)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m wengert",
        description="wengert: reverse-mode automatic differentiation for scalar Python code.",
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    _add_bench(commands)
    _add_demo(commands)
    return parser


def _bench_main(args):
    from wengert import _bench, workloads

    names = args.workloads
    if names is None:
        names = [name for name in workloads.WORKLOADS
                 if not (args.quick and name == "chain-1m")]
    engines = args.engines
    if engines is None:
        engines = ["floats", "wengert"] if args.engine else list(_bench.DEFAULT_ENGINES)
    engines = list(dict.fromkeys(engines + args.engine))
    return _bench.main(names, engines, quick=args.quick, json_path=args.json,
                       plot_path=args.plot, timeout=args.timeout,
                       isolate=not args.in_process)


def _demo_main(args):
    # The demo lives in its own module, imported only when asked for.
    try:
        from wengert import _demo
    except ImportError as error:
        print(f"the demo is not available in this installation ({error})", file=sys.stderr)
        return 2
    _demo.main(args.folder)
    return 0


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "demo":
        return _demo_main(args)
    return _bench_main(args)


if __name__ == "__main__":
    sys.exit(main())

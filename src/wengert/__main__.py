"""Command line: ``python -m wengert bench [--quick] [--workloads ...] [--engines ...]``.

Example:
    python -m wengert bench --quick
    python -m wengert bench --workloads rosenbrock-100,mlp --engines floats,wengert --json out.json
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


def build_parser():
    from wengert import _bench, workloads

    parser = argparse.ArgumentParser(
        prog="python -m wengert",
        description="wengert: reverse-mode automatic differentiation for scalar Python code.",
    )
    commands = parser.add_subparsers(dest="command", metavar="command")
    bench = commands.add_parser(
        "bench",
        help="time wengert against plain floats and other engines",
        description=(
            "Time recording, backward and total for each engine on the standard\n"
            "workloads, in nanoseconds per elementary op, next to plain-float\n"
            "evaluation of the same code. Values and gradients are checked against\n"
            "plain floats and wengert first; a mismatch makes the exit status 1."
        ),
        epilog="workloads:\n" + "\n".join(
            f"  {w.name:<16} {w.description}" for w in workloads.WORKLOADS.values()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.add_argument(
        "--quick", action="store_true",
        help="fewer and shorter repeats, and leave out chain-1m unless named "
             "in --workloads (under a minute)",
    )
    bench.add_argument(
        "--workloads", type=_names(list(workloads.WORKLOADS), "workload"),
        metavar="A,B", help="comma-separated workloads (default: all)",
    )
    bench.add_argument(
        "--engines", type=_names(list(_bench.ENGINES), "engine"),
        default=list(_bench.DEFAULT_ENGINES), metavar="A,B",
        help=f"comma-separated engines (default: {','.join(_bench.DEFAULT_ENGINES)}); "
             "micrograd is skipped when not installed",
    )
    bench.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from wengert import _bench, workloads

    names = args.workloads
    if names is None:
        names = [name for name in workloads.WORKLOADS
                 if not (args.quick and name == "chain-1m")]
    return _bench.main(names, args.engines, quick=args.quick, json_path=args.json)


if __name__ == "__main__":
    sys.exit(main())

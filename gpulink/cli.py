"""The ``gpulink`` command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gpulink`` command."""
    parser = argparse.ArgumentParser(prog="gpulink", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="link built-in synthetic people and report accuracy")
    args = parser.parse_args(argv)
    if args.command == "demo":
        print("gpulink demo: not yet wired")
    return 0


if __name__ == "__main__":
    sys.exit(main())

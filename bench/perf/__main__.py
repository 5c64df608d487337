"""Dispatch `python -m disentbench.bench.perf SUBCOMMAND ...` to bench.perf.<SUBCOMMAND>.main(argv)."""

import importlib
import sys

from disentbench.bench.perf import SUBCOMMANDS


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in SUBCOMMANDS:
        print(f"usage: python -m disentbench.bench.perf {{{','.join(SUBCOMMANDS)}}} [options]", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(f"disentbench.bench.perf.{argv[0]}")
    except ModuleNotFoundError:
        print(f"bench.perf {argv[0]}: not available in this version", file=sys.stderr)
        return 2
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())

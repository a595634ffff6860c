"""The command line: `python -m shop.main --orders 1000`."""

from __future__ import annotations

import argparse

from shop.orders import checksum, simulate


def main(argv: list[str] | None = None) -> int:
    """Simulate orders and print the takings."""
    parser = argparse.ArgumentParser(description="Price random orders.")
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    takings = simulate(args.orders, args.seed)
    print(f"takings {takings} checksum {checksum([takings, args.orders])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

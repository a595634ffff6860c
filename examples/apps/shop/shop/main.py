"""The command line: `python -m shop.main --orders 1000`."""

from __future__ import annotations

import argparse
import time

from shop.orders import checksum, simulate


def main(argv: list[str] | None = None) -> int:
    """Simulate orders and print the takings."""
    parser = argparse.ArgumentParser(description="Price random orders.")
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time", action="store_true", help="Print how long the work took.")
    args = parser.parse_args(argv)
    began, began_cpu = time.perf_counter(), time.process_time()
    takings = simulate(args.orders, args.seed)
    print(f"takings {takings} checksum {checksum([takings, args.orders])}")
    if args.time:
        print(f"work_seconds {time.perf_counter() - began:.4f}")
        print(f"work_cpu_seconds {time.process_time() - began_cpu:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

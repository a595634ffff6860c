"""Many orders, priced: the CPU-bound work of the example."""

from __future__ import annotations

import random

from shop.cart import Cart
from shop.catalog import CATALOG


def simulate(orders: int, seed: int = 1) -> int:
    """Price `orders` random carts; returns the takings in cents."""
    rng = random.Random(seed)
    skus = sorted(CATALOG)
    takings = 0
    for _ in range(orders):
        cart = Cart()
        for _ in range(rng.randint(1, 6)):
            cart.add(rng.choice(skus), rng.randint(1, 3))
        if rng.random() < 0.1:
            cart.remove(skus[0])
        coupon = rng.choice([None, None, "TEN", "BIG"])
        takings += cart.total(coupon)
    return takings


def checksum(values: list[int]) -> int:
    """A number that depends on every value (busy work for the benchmark)."""
    total = 0
    for value in values:
        total = (total * 31 + value) % 1_000_000_007
    return total

"""A shopping cart."""

from __future__ import annotations

from collections import Counter

from shop.catalog import find
from shop.pricing import discount, gross, tax_rate


class Cart:
    """SKUs and quantities, priced on demand."""

    def __init__(self) -> None:
        self.items: Counter[str] = Counter()

    def add(self, sku: str, quantity: int = 1) -> None:
        """Put `quantity` of a product in the cart."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        find(sku)
        self.items[sku] += quantity

    def remove(self, sku: str) -> None:
        """Take a product out altogether."""
        self.items.pop(sku, None)

    def total(self, coupon: str | None = None) -> int:
        """The price to pay in cents, taxes included, after the coupon."""
        cents = 0
        for sku, quantity in sorted(self.items.items()):
            product = find(sku)
            cents += gross(product.cents, tax_rate(product)) * quantity
        return cents - discount(cents, coupon)

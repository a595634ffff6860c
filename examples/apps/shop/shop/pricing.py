"""Taxes and discounts."""

from __future__ import annotations

from shop.catalog import Product

REDUCED, STANDARD = 7, 19


def tax_rate(product: Product) -> int:
    """The tax rate in percent."""
    if product.is_food():
        return REDUCED
    return STANDARD


def discount(total_cents: int, coupon: str | None) -> int:
    """The discount in cents for a basket total and an optional coupon."""
    if coupon is None:
        return 0
    if coupon == "TEN":
        return total_cents // 10
    if coupon == "BIG" and total_cents > 10_000:
        return 1_500
    return 0


def gross(cents: int, rate: int) -> int:
    """A net price with tax, rounded half up."""

    def rounded(value: int) -> int:
        return (value + 50) // 100

    return rounded(cents * (100 + rate))

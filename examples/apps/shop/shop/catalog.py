"""Products and their prices."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Product:
    """Something the shop sells."""

    sku: str
    name: str
    cents: int
    category: str

    def is_food(self) -> bool:
        """Food is taxed at the reduced rate."""
        return self.category == "food"


CATALOG = {
    p.sku: p
    for p in (
        Product("apple", "Apple", 40, "food"),
        Product("bread", "Bread", 250, "food"),
        Product("lamp", "Desk lamp", 3_499, "home"),
        Product("mug", "Mug", 899, "home"),
        Product("book", "Paperback", 1_299, "books"),
    )
}


def find(sku: str) -> Product:
    """The product with this SKU."""
    try:
        return CATALOG[sku]
    except KeyError:
        raise LookupError(f"unknown product {sku!r}") from None


def restock_warning(sku: str) -> str:
    """Never called by the example: a function left uncovered on purpose."""
    return f"{sku} is running out"

"""The shop as a WSGI application: GET /price?sku=...&quantity=...&coupon=..."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from shop.cart import Cart


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Price one product."""
    query = parse_qs(environ.get("QUERY_STRING", ""))
    cart = Cart()
    try:
        cart.add(query["sku"][0], int(query.get("quantity", ["1"])[0]))
    except (KeyError, LookupError, ValueError) as error:
        start_response("400 Bad Request", [("Content-Type", "application/json")])
        return [json.dumps({"error": str(error)}).encode()]
    coupon = query.get("coupon", [None])[0]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"cents": cart.total(coupon)}).encode()]

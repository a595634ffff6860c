"""Hostile inputs shared by the bad-input tests and benchmarks/abuse.py."""

from __future__ import annotations

ALIAS_BOMB = "\n".join(
    [
        "name: bomb",
        "a: &a [x, x, x, x, x, x, x, x, x]",
        *(
            f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "tests: [{name: t, steps: [{name: s, plugin: echo, params: {text: *i}}]}]",
    ]
)
"""A job descriptor of under 1 KB whose YAML aliases expand to 9^9 strings."""

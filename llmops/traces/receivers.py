"""Ingest receivers: later apps (the review sampler) act on newly stored generations inside
the ingest transaction, without the kernel importing them.

A receiver is `fn(*, org, generations: Sequence[Generation]) -> int`: it gets only rows this
batch inserted (pk set, duplicates left out; instances are made on first read) and returns
how many it sampled; the batch answer's `sampled` is the sum. Register from
`AppConfig.ready`."""

from __future__ import annotations

from collections.abc import Callable

Receiver = Callable[..., int]

_receivers: list[Receiver] = []


def register(fn: Receiver) -> Receiver:
    """Add a receiver (idempotent); usable as a decorator."""
    if fn not in _receivers:
        _receivers.append(fn)
    return fn


def unregister(fn: Receiver) -> None:
    if fn in _receivers:
        _receivers.remove(fn)


def receivers() -> tuple[Receiver, ...]:
    return tuple(_receivers)

"""The SQLite ledger writes batches with statements of a few fixed sizes (bounded statement cache)."""

from __future__ import annotations

import itertools

from ccrouter.store.sqlite import _INSERT_SIZES, _chunks


def test_chunks_cover_every_batch_with_the_fixed_sizes_only() -> None:
    for total in range(0, 700):
        pieces = list(_chunks(total, _INSERT_SIZES))
        starts = [start for start, _ in pieces]
        assert starts == sorted(starts)
        assert sum(size for _, size in pieces) == total
        assert all(start + size == nxt for (start, size), (nxt, _) in itertools.pairwise(pieces))
        assert {size for _, size in pieces} <= set(_INSERT_SIZES)
        # Few statement steps per batch: the largest size, plus at most a handful of smaller ones.
        assert len(pieces) <= total // _INSERT_SIZES[0] + 7 * (len(_INSERT_SIZES) - 1) + 3

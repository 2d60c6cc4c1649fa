"""The SQLite twin's in-memory vector mirror: growth, deletion, compaction, filter masks."""

from __future__ import annotations

import numpy as np

from store.knowledge.sqlite_index import _Mirror


def rows(n: int, start: int = 0) -> tuple[list[int], list[str], np.ndarray]:
    rng = np.random.default_rng(start)
    vecs = rng.normal(size=(n, 8)).astype(np.float32)
    return list(range(start, start + n)), [f"doc:{(start + i) // 3}" for i in range(n)], vecs


def test_append_grows_and_keeps_rows_addressable() -> None:
    m = _Mirror(generation=0, dims=8)
    for batch in range(10):
        ids, docs, vecs = rows(300, batch * 300)
        m.append(ids, docs, vecs)
    assert m.size == 3000 and m.matrix.shape[0] >= 3000
    ids, _, vecs = rows(300, 2700)
    assert np.array_equal(m.matrix[m.row_of[2700]], vecs[0])
    assert int(m.ids[m.row_of[2999]]) == 2999


def test_remove_and_compact_preserve_the_live_rows() -> None:
    m = _Mirror(generation=0, dims=8)
    ids, docs, vecs = rows(4000)
    m.append(ids, docs, vecs)
    m.remove(list(range(0, 2000)))  # > 1024 dead and > 25 %: compacts
    assert m.size == 2000 and m.alive[: m.size].all()
    assert set(m.row_of) == set(range(2000, 4000))
    for cid in (2000, 3333, 3999):
        assert np.array_equal(m.matrix[m.row_of[cid]], vecs[cid])
        assert int(m.ids[m.row_of[cid]]) == cid
    mask = m.mask_for({"doc:700", "doc:1332", "doc:missing"})
    assert sorted(int(i) for i in m.ids[: m.size][mask]) == [2100, 2101, 2102, 3996, 3997, 3998]


def test_small_removals_only_mark_rows_dead() -> None:
    m = _Mirror(generation=0, dims=8)
    ids, docs, vecs = rows(100)
    m.append(ids, docs, vecs)
    m.remove([5, 6, 7, 999])
    assert m.size == 100 and not m.alive[5] and m.alive[8] and 5 not in m.row_of
    assert not m.matrix[5].any()

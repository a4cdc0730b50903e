"""``mcland.core.blas.one_blas_thread``: one BLAS thread inside, the original limits after,
whatever the nesting and the threads that enter and leave."""

from __future__ import annotations

import threading

from threadpoolctl import threadpool_info, threadpool_limits

from mcland.core.blas import one_blas_thread


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def test_nested_and_concurrent_blocks_share_one_limit():
    with threadpool_limits(limits=2, user_api="blas"):  # a known outside limit, even on 1 core
        outside = _blas_threads()
        assert outside == {2}
        inside, release = [], threading.Event()

        def worker():
            with one_blas_thread():
                inside.append(_blas_threads())
                release.wait(10)
            inside.append(_blas_threads())  # the main thread's block is still open

        with one_blas_thread():
            with one_blas_thread():
                assert _blas_threads() == {1}
            assert _blas_threads() == {1}  # the inner block left, the outer is open
            t = threading.Thread(target=worker)
            t.start()
            release.set()
            t.join()
            assert _blas_threads() == {1}
        assert inside == [{1}, {1}]
        assert _blas_threads() == outside  # the last to leave restored the original

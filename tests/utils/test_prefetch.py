"""anovit.utils.prefetch: the items in order, the next fetched in another thread, errors where they occurred."""

import threading

import pytest

from anovit.utils.prefetch import prefetch


def test_items_come_in_order_and_load_in_another_thread():
    threads = []

    def items():
        for i in range(5):
            threads.append(threading.current_thread())
            yield i

    assert list(prefetch(items())) == [0, 1, 2, 3, 4]
    assert threads and all(t is not threading.current_thread() for t in threads)


def test_an_error_is_raised_at_its_item_and_an_early_stop_ends_cleanly():
    def failing():
        yield 1
        raise ValueError("bad item 2")

    seen = []
    with pytest.raises(ValueError, match="bad item 2"):
        for item in prefetch(failing()):
            seen.append(item)
    assert seen == [1]
    loop = prefetch(iter(range(100)))
    assert next(loop) == 0
    loop.close()  # waits for the one item in flight, leaves no thread behind
    assert not any(t.name.startswith("anovit-prefetch") for t in threading.enumerate())

"""diffscale.core.read_ahead: a producer thread ahead of its consumer."""

import threading

import pytest

from diffscale.core.read_ahead import read_ahead


def test_the_items_come_in_order_and_the_producer_runs_in_another_thread():
    producers = []

    def items():
        for i in range(20):
            producers.append(threading.current_thread())
            yield i

    assert list(read_ahead(items(), depth=2)) == list(range(20))
    assert all(t is not threading.current_thread() for t in producers)


def test_the_producer_makes_the_next_item_while_the_consumer_uses_this_one():
    made = [threading.Event() for _ in range(6)]

    def items():
        for i in range(5):
            made[i].set()
            yield i

    for i in read_ahead(items()):
        # the consumer holds item i; the producer goes on to item i + 1 without waiting for it
        if i < 4:
            assert made[i + 1].wait(timeout=10)


def test_a_producers_error_is_raised_at_the_item_it_failed_on():
    def items():
        yield 1
        yield 2
        raise OSError("month 3: disk full")

    got = []
    with pytest.raises(OSError, match="month 3: disk full"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_producer():
    made = []

    def items():
        for i in range(1000):
            made.append(i)
            yield i

    ahead = read_ahead(items(), depth=1)
    assert next(ahead) == 0
    ahead.close()  # what a consumer's exception or a kill's KeyboardInterrupt does
    assert not any(t.name == "read_ahead" for t in threading.enumerate())
    assert len(made) <= 3  # the item handed over, the one waiting in the queue, the one being offered


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be at least 1"):
        list(read_ahead([1], depth=0))

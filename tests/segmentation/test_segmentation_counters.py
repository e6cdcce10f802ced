"""A live counter packs its events out of the garbage collector's reach and counts like sorted lists would."""

import bisect
import gc
import random

import numpy as np

from matcha.segmentation.live_counters import Counter


def test_a_counter_agrees_with_sorted_lists_on_events_in_any_order():
    rng = random.Random(7)
    for _ in range(300):
        counter, expected = Counter(), []
        for _ in range(rng.randint(1, 30)):
            # Whole seconds repeat, so equal times are inserted after the ones already there.
            at = rng.choice([rng.uniform(0, 100), float(rng.randint(0, 10))])
            amount = rng.uniform(0, 5)
            oldest = counter.add(at, amount)
            expected.insert(bisect.bisect_right([time for time, _ in expected], at), (at, amount))
            assert oldest == (expected[0][0] == at)
            if rng.random() < 0.3:
                cutoff = rng.uniform(0, 100)
                counter.prune(cutoff)
                expected = [(time, value) for time, value in expected if time > cutoff]
            assert len(counter) == len(expected)
            assert abs(counter.total - sum(value for _, value in expected)) < 1e-9
            if expected:
                assert counter.oldest() == expected[0][0]


def test_a_counter_from_arrays_and_what_the_collector_sees():
    counter = Counter.of(np.array([1.0, 2.0, 3.0]), np.array([5.0, 6.0, 7.0]), 18.0)
    assert (len(counter), counter.oldest(), counter.total) == (3, 1.0, 18.0)
    counter.prune(2.0)
    assert (len(counter), counter.oldest(), counter.total) == (1, 3.0, 7.0)
    counter.prune(3.0)
    assert (len(counter), counter.total) == (0, 0.0)
    # Its events are not an object the collector walks (two lists were, per counter).
    assert not gc.is_tracked(counter.events)

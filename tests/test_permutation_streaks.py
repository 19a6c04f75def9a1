"""scripts/permutation_streaks.py: how long a permutation leaves channels on a coupling's untouched side."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import permutation_streaks  # noqa: E402


def test_streaks_by_hand():
    identity = [np.arange(4)] * 8  # channels 0 and 1 stay on the untouched side for all 8 steps
    assert permutation_streaks.streaks(identity) == ([8, 8, 0, 0], 7, [0, 0, 8, 8])
    reverse = [np.arange(4)[::-1]] * 8  # each half alternates: untouched every other step
    assert permutation_streaks.streaks(reverse) == ([1, 1, 1, 1], 0, [4, 4, 4, 4])
    # positions after each step: [1,0,2,3] -> [0,1,2,3] -> [2,3,0,1]: 0 and 1 untouched twice, then 2 and 3
    swap_first = [np.array([1, 0, 2, 3]), np.array([1, 0, 2, 3]), np.array([2, 3, 0, 1])]
    assert permutation_streaks.streaks(swap_first) == ([2, 2, 1, 1], 1, [1, 1, 2, 2])


def test_reads_the_layers_order():
    from glow_tf.invconv import ReversePermute, ShufflePermute

    assert permutation_streaks.layer_permutation(ReversePermute(), 6).tolist() == [5, 4, 3, 2, 1, 0]
    shuffle = ShufflePermute(8, rng=np.random.default_rng(5))
    assert permutation_streaks.layer_permutation(shuffle, 8).tolist() == np.asarray(shuffle.indices).tolist()

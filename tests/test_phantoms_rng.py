"""Philox4x32-10 and the float32 normal transform of phantoms._rng."""

import hashlib
import math

import numpy as np
import pytest
from _threads import output_with_threads
from scipy import stats

from phantoms._rng import philox4x32_10, split_key, standard_normal

# Known-answer vectors of Philox4x32-10 from the Random123 distribution's
# kat_vectors file (Salmon et al. SC'11): counter (4 words), key (2 words), output.
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers(counter, key, expected):
    got = philox4x32_10([counter], key)[0]
    assert tuple(int(v) for v in got) == expected


def _philox_reference(ctr, key):
    """Slow pure-Python Philox4x32-10, written from the published round function."""
    m0, m1, w0, w1, mask = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85, 0xFFFFFFFF
    c = list(ctr)
    k = list(key)
    for r in range(10):
        if r:
            k = [(k[0] + w0) & mask, (k[1] + w1) & mask]
        p0, p1 = m0 * c[0], m1 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & mask, (p0 >> 32) ^ c[3] ^ k[1], p0 & mask]
    return c


def test_philox_matches_slow_reference_on_random_inputs():
    rng = np.random.default_rng(5)
    ctrs = rng.integers(0, 2 ** 32, size=(200, 4), dtype=np.uint64)
    key = tuple(int(v) for v in rng.integers(0, 2 ** 32, size=2))
    got = philox4x32_10(ctrs, key)
    for i in range(ctrs.shape[0]):
        assert [int(v) for v in got[i]] == _philox_reference([int(v) for v in ctrs[i]], key)


def test_normals_are_box_muller_of_the_philox_words():
    """The fast polynomial transform equals libm Box-Muller on the same raw words."""
    seed, stream, n = 0x1234_5678_9ABC_DEF0, 7, 4000
    k0, k1, s0, s1 = (int(v) for v in split_key(seed, stream))
    blocks = np.arange(n // 4, dtype=np.uint64)
    ctr = np.stack([blocks & 0xFFFFFFFF, blocks >> 32,
                    np.full_like(blocks, s0), np.full_like(blocks, s1)], axis=1)
    w = philox4x32_10(ctr, (k0, k1)).astype(np.float64)
    u = (w + 0.5) * 2.0 ** -32
    r1, r2 = np.sqrt(-2 * np.log(u[:, 0])), np.sqrt(-2 * np.log(u[:, 2]))
    ref = np.stack([r1 * np.cos(2 * np.pi * u[:, 1]), r1 * np.sin(2 * np.pi * u[:, 1]),
                    r2 * np.cos(2 * np.pi * u[:, 3]), r2 * np.sin(2 * np.pi * u[:, 3])],
                   axis=1).ravel()
    got = standard_normal(n, seed=seed, stream=stream)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-6)


@pytest.fixture(scope="module")
def sample():
    return standard_normal(1_000_000, seed=20261128).astype(np.float64)


def test_moments(sample):
    n = sample.size
    assert abs(sample.mean()) < 4 / math.sqrt(n)
    assert abs(sample.var() - 1) < 4 * math.sqrt(2 / n)
    assert abs(stats.skew(sample)) < 4 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(sample)) < 4 * math.sqrt(24 / n)


def test_ks_against_normal(sample):
    assert stats.kstest(sample, "norm").pvalue > 1e-3
    # tails: share beyond 3 sigma (two-sided) is 0.27%
    frac = np.mean(np.abs(sample) > 3)
    assert abs(frac - 2 * stats.norm.sf(3)) < 5 * math.sqrt(2 * stats.norm.sf(3) / sample.size)


@pytest.mark.parametrize("lag", [1, 2, 3, 4, 5, 8, 257, 1024])
def test_lag_correlation_is_zero(sample, lag):
    r = np.corrcoef(sample[:-lag], sample[lag:])[0, 1]
    assert abs(r) < 4 / math.sqrt(sample.size)


def test_seeds_and_streams_are_independent():
    a = standard_normal(200_000, seed=1)
    b = standard_normal(200_000, seed=2)
    c = standard_normal(200_000, seed=1, stream=1)
    for x, y in ((a, b), (a, c), (b, c)):
        assert abs(np.corrcoef(x, y)[0, 1]) < 4 / math.sqrt(a.size)


def test_pieces_equal_the_whole():
    whole = standard_normal(1000, seed=9, stream=3)
    parts = np.concatenate([standard_normal(400, seed=9, stream=3),
                            standard_normal(600, seed=9, stream=3, start=400)])
    assert whole.tobytes() == parts.tobytes()


def test_same_bytes_with_one_or_two_threads():
    code = ("import hashlib; from phantoms._rng import standard_normal; "
            "print(hashlib.sha256(standard_normal(100003, seed=77, stream=5).tobytes()).hexdigest())")
    here = hashlib.sha256(standard_normal(100003, seed=77, stream=5).tobytes()).hexdigest()
    assert output_with_threads(code, 1) == output_with_threads(code, 2) == here


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(seed=-1), ValueError, r"seed must be an integer in \[0, 2\*\*64\)"),
    (dict(seed=2 ** 64), ValueError, "seed must be an integer"),
    (dict(seed=1.5), TypeError, "seed must be an integer.*float"),
    (dict(seed=True), TypeError, "seed must be an integer"),
    (dict(seed=1, stream=-3), ValueError, "stream must be an integer"),
    (dict(seed=1, start=3), ValueError, "start must be a non-negative multiple of 4"),
])
def test_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        standard_normal(10, **kwargs)

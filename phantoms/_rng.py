"""Counter-based random numbers: Philox4x32-10 and float32 standard normals.

Philox4x32-10 (Salmon et al. 2011) maps a 128-bit counter and a 64-bit key to
four 32-bit words through ten rounds of a multiply/xor Feistel-like network.
Because each output block is a pure function of (counter, key), a parallel loop
can give every element its own counter and the result is the same bytes
whatever the number of threads or the chunking.

Layout used throughout ``phantoms``:

- key = the caller's 64-bit ``seed`` (low word ``k0``, high word ``k1``);
- counter = (block index low word, block index high word, ``stream`` low word,
  ``stream`` high word), so different streams of one seed never overlap;
- block ``i`` gives the standard normals ``4 i .. 4 i + 3``: two Box-Muller
  pairs, uniforms ``u = (w + 0.5) / 2**32`` in (0, 1).

The Box-Muller transform uses branch-free polynomial ``log`` and ``sin``/``cos``
(written here, accurate to ~1e-11 absolute in float64) instead of libm calls, so
the loop vectorises; see ``docs/scanner.md`` for the measured speed.

References
----------
J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers:
as easy as 1, 2, 3", Proc. SC'11, 2011. https://doi.org/10.1145/2063384.2063405
G. E. P. Box, M. E. Muller, "A note on the generation of random normal
deviates", Ann. Math. Statist. 29 (1958) 610-611.
https://doi.org/10.1214/aoms/1177706645
"""

from __future__ import annotations

import math
import operator

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from phantoms._config import JIT, PARALLEL_JIT

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_TWO_M32 = 2.0 ** -32
_LN2 = math.log(2.0)
_SQRT2 = math.sqrt(2.0)
_U64_MAX = 2 ** 64 - 1


@intrinsic
def _f64_bits(typingctx, x):
    """Reinterpret a float64 as int64 (a no-op bitcast; vectorises)."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return sig, codegen


@intrinsic
def _bits_f64(typingctx, x):
    """Reinterpret an int64 as float64."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return sig, codegen


@numba.njit(inline="always", **JIT)
def _philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Ten Philox rounds on uint64 scalars holding 32-bit words."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _S32) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK32)
    return c0, c1, c2, c3


@numba.njit(inline="always", **JIT)
def _log_unit(u):
    """Natural log of u in (0, 1], branch-free (exponent bits + odd series)."""
    b = _f64_bits(u)
    e = (b >> 52) - 1023
    m = _bits_f64((b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)  # m in [1, 2)
    big = m > _SQRT2
    m = 0.5 * m if big else m
    e = e + 1 if big else e
    t = (m - 1.0) / (m + 1.0)      # |t| <= 0.1716
    t2 = t * t
    p = 1.0 / 13.0
    p = p * t2 + 1.0 / 11.0
    p = p * t2 + 1.0 / 9.0
    p = p * t2 + 1.0 / 7.0
    p = p * t2 + 1.0 / 5.0
    p = p * t2 + 1.0 / 3.0
    p = p * t2 + 1.0
    return e * _LN2 + 2.0 * t * p


@numba.njit(inline="always", **JIT)
def _sincos_2pi(u):
    """(sin(2 pi u), cos(2 pi u)) for u in [0, 1), branch-free Taylor polynomials."""
    y = math.pi * (u - 0.5)        # in [-pi/2, pi/2); 2 pi u = 2 y + pi
    y2 = y * y
    s = -1.0 / 1307674368000.0
    s = s * y2 + 1.0 / 6227020800.0
    s = s * y2 - 1.0 / 39916800.0
    s = s * y2 + 1.0 / 362880.0
    s = s * y2 - 1.0 / 5040.0
    s = s * y2 + 1.0 / 120.0
    s = s * y2 - 1.0 / 6.0
    s = (s * y2 + 1.0) * y
    c = 1.0 / 20922789888000.0
    c = c * y2 - 1.0 / 87178291200.0
    c = c * y2 + 1.0 / 479001600.0
    c = c * y2 - 1.0 / 3628800.0
    c = c * y2 + 1.0 / 40320.0
    c = c * y2 - 1.0 / 720.0
    c = c * y2 + 1.0 / 24.0
    c = c * y2 - 0.5
    c = c * y2 + 1.0
    return -2.0 * s * c, s * s - c * c


@numba.njit(inline="always", **JIT)
def _normal4(i, k0, k1, s0, s1):
    """Standard normals 4 i .. 4 i + 3 of the stream (s0, s1) under key (k0, k1)."""
    ii = np.uint64(i)
    a, b, c, d = _philox4x32_10(ii & _MASK32, ii >> _S32, s0, s1, k0, k1)
    u1 = (np.float64(a) + 0.5) * _TWO_M32
    u2 = (np.float64(b) + 0.5) * _TWO_M32
    u3 = (np.float64(c) + 0.5) * _TWO_M32
    u4 = (np.float64(d) + 0.5) * _TWO_M32
    r1 = np.sqrt(-2.0 * _log_unit(u1))
    r2 = np.sqrt(-2.0 * _log_unit(u3))
    sn1, cs1 = _sincos_2pi(u2)
    sn2, cs2 = _sincos_2pi(u4)
    return r1 * cs1, r1 * sn1, r2 * cs2, r2 * sn2


@numba.njit(**PARALLEL_JIT)
def _fill_normal(out, start_block, k0, k1, s0, s1):
    """out[j] = normal number 4 * start_block + j of the stream (len(out) % 4 == 0).

    Parallel over chunks of 1024 blocks; each chunk writes its own slice of
    ``out`` with an inner loop starting at 0, which vectorises (a ``prange``
    body, or a loop over a global index range, did not: 4x slower). Every
    element depends only on its index, so the chunking does not change the bytes.
    """
    nb = out.size // 4
    chunk = 1024
    nchunks = (nb + chunk - 1) // chunk
    for c in numba.prange(nchunks):
        b0 = c * chunk
        n = min(nb - b0, chunk)
        seg = out[4 * b0:4 * (b0 + n)]
        base = start_block + b0
        for j in range(n):
            z0, z1, z2, z3 = _normal4(base + j, k0, k1, s0, s1)
            seg[4 * j] = np.float32(z0)
            seg[4 * j + 1] = np.float32(z1)
            seg[4 * j + 2] = np.float32(z2)
            seg[4 * j + 3] = np.float32(z3)


@numba.njit(**JIT)
def _philox_blocks(counters, k0, k1):
    """Raw Philox4x32-10 outputs for an (N, 4) array of counters (uint64 words)."""
    out = np.empty_like(counters)
    for i in range(counters.shape[0]):
        a, b, c, d = _philox4x32_10(counters[i, 0], counters[i, 1], counters[i, 2],
                                    counters[i, 3], k0, k1)
        out[i, 0] = a
        out[i, 1] = b
        out[i, 2] = c
        out[i, 3] = d
    return out


def split_key(seed, stream=0):
    """Validate ``seed`` and ``stream`` (integers in [0, 2**64)) and split into 32-bit words.

    Returns ``(k0, k1, s0, s1)`` as ``numpy.uint64`` scalars.
    """
    for name, v in (("seed", seed), ("stream", stream)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer in [0, 2**64), got "
                            f"{type(v).__name__} {v!r}; pass e.g. {name}=0")
        if not 0 <= int(v) <= _U64_MAX:
            raise ValueError(f"{name} must be an integer in [0, 2**64), got {v!r}; "
                             f"reduce it, e.g. {name} % 2**64")
    s, t = int(seed), int(stream)
    return (np.uint64(s & 0xFFFFFFFF), np.uint64(s >> 32),
            np.uint64(t & 0xFFFFFFFF), np.uint64(t >> 32))


def philox4x32_10(counters, key):
    """Raw Philox4x32-10 blocks (for known-answer tests and inspection).

    Parameters
    ----------
    counters : (N, 4) array_like of int
        128-bit counters as four 32-bit words (word 0 first).
    key : sequence of 2 int
        The 64-bit key as two 32-bit words.

    Returns
    -------
    (N, 4) ndarray of uint32

    Examples
    --------
    >>> [hex(int(w)) for w in philox4x32_10([[0, 0, 0, 0]], (0, 0))[0]]
    ['0x6627e8d5', '0xe169c58d', '0xbc57ac4c', '0x9b00dbd8']
    """
    c = np.asarray(counters, dtype=np.uint64).reshape(-1, 4)
    k = np.asarray(key, dtype=np.uint64).reshape(2)
    if np.any(c > 0xFFFFFFFF) or np.any(k > 0xFFFFFFFF):
        raise ValueError("counter and key words must be 32-bit (0 .. 2**32 - 1)")
    return _philox_blocks(np.ascontiguousarray(c), k[0], k[1]).astype(np.uint32)


def standard_normal(n, *, seed, stream=0, start=0):
    """``n`` float32 standard normal numbers from the counter-based generator.

    Parameters
    ----------
    n : int
        How many numbers.
    seed : int
        64-bit key, in [0, 2**64).
    stream : int, optional
        64-bit stream id; different streams of one seed are independent.
    start : int, optional
        Index of the first number in the stream (a multiple of 4), so a long
        stream can be produced in pieces with identical bytes.

    Returns
    -------
    (n,) ndarray of float32

    Examples
    --------
    >>> z = standard_normal(8, seed=1)
    >>> z.dtype, bool(np.array_equal(z[4:], standard_normal(4, seed=1, start=4)))
    (dtype('float32'), True)
    """
    n = operator.index(n)
    start = operator.index(start)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if start < 0 or start % 4:
        raise ValueError(f"start must be a non-negative multiple of 4, got {start}")
    k0, k1, s0, s1 = split_key(seed, stream)
    buf = np.empty(((n + 3) // 4) * 4, dtype=np.float32)
    _fill_normal(buf, np.int64(start // 4), k0, k1, s0, s1)
    return buf[:n]

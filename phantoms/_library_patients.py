"""Virtual patients: seeded coronary lesion populations along simplified artery paths.

Public names are re-exported by :mod:`phantoms.library`; see ``docs/phantoms.md``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from phantoms._library_estimate import _agatston_weight, estimated_agatston
from phantoms._library_screening import screening_burden
from phantoms._validate import boolean, interval, one_of, real_in_range
from phantoms.motion import check_heart_rate

#: Artery labels, in the order used everywhere (lesion names start with them).
ARTERIES = ("lm", "lad", "lcx", "rca")

#: Agatston risk categories (inclusive score bounds) as index -> (low, high):
#: 0, 1-10, 11-100, 101-400, > 400.
RISK_CATEGORY_BOUNDS = ((0.0, 0.0), (1.0, 10.0), (11.0, 100.0), (101.0, 400.0),
                        (401.0, math.inf))

# Artery centrelines as (z, y, x) polylines in mm in body coordinates (y < 0 anterior,
# x > 0 patient left as displayed, z > 0 cranial). Simplified anatomy fitted into the
# soft tissue between the body's lungs: left main from the aortic root; LAD down the
# anterior interventricular groove towards the apex; LCX along the left
# atrioventricular groove curving posteriorly; RCA along the right AV groove, down the
# acute margin and round towards the inferior wall.
_CENTRELINES_MM = {
    "lm": ((40.0, -30.0, -5.0), (40.0, -36.0, 8.0)),
    "lad": ((40.0, -36.0, 8.0), (30.0, -52.0, 16.0), (10.0, -60.0, 22.0),
            (-15.0, -60.0, 26.0), (-40.0, -50.0, 28.0)),
    "lcx": ((40.0, -36.0, 8.0), (37.0, -25.0, 20.0), (30.0, -10.0, 24.0),
            (18.0, 5.0, 24.0), (5.0, 18.0, 20.0)),
    "rca": ((38.0, -36.0, -12.0), (32.0, -48.0, -20.0), (15.0, -54.0, -26.0),
            (-10.0, -44.0, -27.0), (-30.0, -22.0, -25.0), (-36.0, 0.0, -18.0)),
}
#: Vessel lumen radius per artery (mm); lesions sit on the wall, one radius off axis.
_VESSEL_RADIUS_MM = {"lm": 2.2, "lad": 1.7, "lcx": 1.5, "rca": 1.8}
#: Relative chance that a lesion lands on each artery.
_ARTERY_WEIGHTS = {"lm": 0.1, "lad": 0.4, "lcx": 0.2, "rca": 0.3}
#: Peak in-plane velocity range per artery over the cycle (mm/s); RCA fastest, then
#: LCX, LM, LAD (Mao et al. 2000: 22.4-108.6 mm/s).
_PEAK_VELOCITY_MM_S = {"rca": (70.0, 109.0), "lcx": (50.0, 85.0), "lm": (35.0, 65.0),
                       "lad": (22.0, 50.0)}

# Target estimated totals per category (kept away from the category edges), the band
# a patient's estimate must fall in to be accepted, and the number of lesions drawn.
_TARGET_RANGE = {1: (2.0, 8.0), 2: (15.0, 80.0), 3: (130.0, 330.0), 4: (500.0, 1500.0)}
_ACCEPT_BAND = {0: (0.0, 0.0), 1: (1.5, 9.0), 2: (12.0, 90.0), 3: (110.0, 370.0),
                4: (450.0, math.inf)}
_N_LESIONS_RANGE = {0: (0, 0), 1: (1, 2), 2: (1, 4), 3: (2, 7), 4: (4, 12)}
_DENSITY_RANGE_MG_CM3 = (130.0, 900.0)
_VOLUME_RANGE_MM3 = (1.0, 400.0)
_SHAPES = ("ellipsoid", "tube", "blob")
#: Lesion population models of :func:`virtual_patient` (``population``).
POPULATIONS = ("categories", "screening")
_GAP_MM = 2.0
_Z_EXTENT_MM = (-50.0, 50.0)


def coronary_centrelines():
    """Simplified coronary centrelines of the virtual patients.

    Returns
    -------
    dict of str -> (N, 3) ndarray
        Artery label (``"lm"``, ``"lad"``, ``"lcx"``, ``"rca"``) -> polyline vertices
        ``(z, y, x)`` in mm in body coordinates (``x = y = 0`` at the body centre).

    Examples
    --------
    >>> from phantoms.library import coronary_centrelines
    >>> sorted(coronary_centrelines())
    ['lad', 'lcx', 'lm', 'rca']
    """
    return {a: np.array(pts, dtype=float) for a, pts in _CENTRELINES_MM.items()}


def _arc_point(polyline, s):
    """Point and unit tangent at arc length fraction s in [0, 1] along a polyline."""
    seg = np.diff(polyline, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    target = s * lengths.sum()
    cum = np.concatenate(([0.0], np.cumsum(lengths)))
    i = int(np.clip(np.searchsorted(cum, target, side="right") - 1, 0, len(seg) - 1))
    f = (target - cum[i]) / lengths[i]
    return polyline[i] + f * seg[i], seg[i] / lengths[i]


def _frame(tangent, rng):
    """Orthonormal frame (t, n1, n2) with a random roll about the tangent."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(tangent[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    n1 = np.cross(tangent, helper)
    n1 /= np.linalg.norm(n1)
    n2 = np.cross(tangent, n1)
    phi = rng.uniform(0.0, 2.0 * math.pi)
    c, s = math.cos(phi), math.sin(phi)
    return tangent, c * n1 + s * n2, -s * n1 + c * n2


def _make_shape(kind, centre, frame, volume, rng):
    """A lesion shape of the given kind with exactly (or, for blobs, numerically) ``volume``."""
    from phantoms.shapes import Blob, Ellipsoid, Tube

    t, n1, n2 = frame
    if kind == "ellipsoid":
        along = rng.uniform(1.0, 2.5)
        across = rng.uniform(0.6, 1.0)
        b = (volume / (4.0 / 3.0 * math.pi * along * across)) ** (1.0 / 3.0)
        rotation = np.column_stack((t, n1, n2))          # columns: body axes in (z, y, x)
        return Ellipsoid(tuple(centre), (along * b, b, across * b), rotation=rotation)
    if kind == "tube":
        # Capsule along the vessel: V = pi r^2 L + 4/3 pi r^3, with L = ratio * r.
        ratio = rng.uniform(1.0, 4.0)
        r = (volume / (math.pi * ratio + 4.0 / 3.0 * math.pi)) ** (1.0 / 3.0)
        half = ratio * r / 2.0
        ends = np.array([centre - half * t, centre + half * t])
        return Tube(ends, r)
    # Blob: 2-4 spheres strung along the vessel with random lateral jitter.
    m = int(rng.integers(2, 5))
    radii = rng.uniform(0.7, 1.0, size=m)
    offsets = np.cumsum(np.concatenate(([0.0], rng.uniform(0.6, 1.1, size=m - 1)
                                        * (radii[1:] + radii[:-1]) / 2.0)))
    offsets -= offsets.mean()
    jitter = rng.normal(0.0, 0.15, size=(m, 2))
    unit_centres = (offsets[:, None] * t + jitter[:, :1] * n1 + jitter[:, 1:] * n2)
    unit = Blob(tuple(map(tuple, centre + unit_centres)), tuple(radii))
    scale = (volume / float(unit.volume_mm3)) ** (1.0 / 3.0)
    return Blob(tuple(map(tuple, centre + scale * unit_centres)), tuple(scale * radii))


def _boxes_clear(box, boxes, gap):
    lo, hi = np.asarray(box[0]), np.asarray(box[1])
    for lo2, hi2 in boxes:
        if np.all(lo - gap < hi2) and np.all(lo2 - gap < hi):
            return False
    return True


def _check_seed(seed):
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise TypeError(
            f"seed must be a non-negative int or a numpy.random.SeedSequence, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def virtual_patient(seed, *, risk_category=None, n_lesions=None, shapes=_SHAPES,
                    motion=True, heart_rate_bpm=None, kvp=120.0, extension_ring=False,
                    z_extent_mm=_Z_EXTENT_MM, population="categories", motion_scale=1.0,
                    density_range_mg_cm3=_DENSITY_RANGE_MG_CM3, share_alpha=2.0):
    """A virtual patient: calcified lesions along simplified coronary arteries.

    The generator first picks a target Agatston risk category (or takes
    ``risk_category``), draws a target total score inside it, splits it among the
    lesions and sizes each lesion from its share and density (volume = 3 mm x share /
    Agatston weight); patients whose :func:`estimated_agatston` total falls outside
    the category (kept off its edges: 1.5-9, 12-90, 110-370, >= 450) are redrawn.
    Lesions sit on the vessel wall at random positions along LM, LAD, LCX and RCA,
    never overlap (axis-aligned bounding boxes at least 2 mm apart) and move with
    their artery's cardiac motion.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
        Seed; the same seed gives the same patient.
    risk_category : int or None
        Target category index into :data:`RISK_CATEGORY_BOUNDS` (0: score 0,
        1: 1-10, 2: 11-100, 3: 101-400, 4: > 400); None draws one uniformly.
    n_lesions : int or None
        Number of lesions (0 only with category 0); None draws it (1-2 lesions for
        category 1 up to 4-12 for category 4).
    shapes : sequence of {"ellipsoid", "tube", "blob"}
        Shapes to draw from (uniformly).
    motion : bool, default True
        Give each artery a :class:`phantoms.motion.CardiacMotion` (random in-plane
        direction, peak speed per artery: RCA 70-109, LCX 50-85, LM 35-65,
        LAD 22-50 mm/s); False makes every lesion static.
    heart_rate_bpm : float or None
        The patient's heart rate during the scan (30-200 bpm); None draws 55-85
        bpm. It is the period of every artery's motion and times the scan: a
        gated protocol samples its ``gating_phase`` of this cycle (the phantom's
        :attr:`~phantoms.phantom.Phantom.heart_rate_bpm`). Unused with
        ``motion=False`` (a static patient has no heart to time).
    kvp : float, default 120
        Tube voltage the estimate assumes.
    extension_ring : bool, default False
        Use the 400 x 300 mm body.
    z_extent_mm : (float, float), default (-50, 50)
        Axial extent; must contain the arteries (z from -40 to +40 mm).
    population : {"categories", "screening"}, default "categories"
        How the calcium is drawn. ``"categories"``: aimed at a risk category as
        described above. ``"screening"``: the total Agatston score and the number
        of lesions are drawn from the burden measured in a lung-screening
        population (no category is aimed at, none is avoided, and 24% of the
        patients have no calcium; :mod:`phantoms._library_screening` has the
        model and its sources); ``risk_category`` and ``n_lesions`` must then be
        None, and the lesions are sized from their shares as above without the
        redraw to a category.
    motion_scale : float, default 1
        Factor (0-5) on every artery's peak speed; 0 keeps the motion timing but
        makes every lesion static. Values other than 1 are for sensitivity studies.
    density_range_mg_cm3 : (float, float), default (130, 900)
        Range of the log-uniform lesion density (mg HA/cm3), within 10-3000.
    share_alpha : float, default 2
        Concentration of the Dirichlet split of the total among the lesions
        (0.05-100): small values give one dominant lesion and many small ones,
        large values lesions of equal shares.

    Returns
    -------
    Phantom
        Named ``"virtual_patient"``; lesion names ``"<artery>_<k>_<shape>"`` such as
        ``"rca_0_tube"`` (the artery label is the prefix before the first ``_``).

    Notes
    -----
    The generator draws in stages, in this order: the risk category, the heart
    rate, one motion per artery (drawn even with ``motion=False``, so static and
    moving patients of one seed have the same lesions), then candidate patients
    until one lands in the category, each being a lesion population (target
    total, number of lesions, their shares) placed on the arteries.

    Densities are drawn log-uniformly in 130-900 mg HA/cm3 and volumes are kept in
    1-400 mm3. The artery paths are a simplified geometry fitted between the body's
    lungs, not an anatomical atlas (see ``docs/phantoms.md``).

    References
    ----------
    Mao SS et al. Coronary artery motion in electron beam tomography. J Comput Assist
    Tomogr 2000;24:253-8 (velocities 22.4-108.6 mm/s; RCA fastest, then LCX, LM, LAD).

    Examples
    --------
    >>> from phantoms.library import virtual_patient
    >>> p = virtual_patient(3, risk_category=2, heart_rate_bpm=72)
    >>> len(p.lesions) >= 1, p.heart_rate_bpm
    (True, 72.0)
    """
    from phantoms.body import ThoraxBody
    from phantoms.phantom import Phantom

    rng = np.random.default_rng(_check_seed(seed))
    one_of("population", population, POPULATIONS)
    draw = _check_draw_options(motion_scale, density_range_mg_cm3, share_alpha)
    if population == "screening":
        if risk_category is not None or n_lesions is not None:
            raise ValueError(
                "population='screening' draws each patient's calcium (total and number of "
                f"lesions); got risk_category={risk_category!r}, n_lesions={n_lesions!r}: "
                "leave both None, or use population='categories'")
        burden = screening_burden(float(rng.uniform()))
        category = _category_of(burden[0])
    else:
        burden = None
        category = _patient_category(risk_category, rng)
    shapes = tuple(shapes)
    _check_patient_options(category, n_lesions, shapes, motion, kvp)
    hr = (float(rng.uniform(55.0, 85.0)) if heart_rate_bpm is None
          else check_heart_rate(heart_rate_bpm))
    z_extent = _check_patient_extent(z_extent_mm)
    body = ThoraxBody(extension_ring=bool(extension_ring))
    motions = _artery_motions(rng, hr, bool(motion), draw["motion_scale"])
    if burden is None:
        lesions = _accepted_lesions(rng, category, n_lesions, shapes, motions, kvp, body,
                                    z_extent, draw)
    else:
        lesions = _screening_lesions(rng, burden, shapes, motions, kvp, body, z_extent, draw)
    return Phantom(body, tuple(lesions), z_extent_mm=z_extent, name="virtual_patient")


def _check_draw_options(motion_scale, density_range_mg_cm3, share_alpha):
    """The lesion-draw options, checked: motion scale, density range, Dirichlet alpha."""
    lo, hi = interval("density_range_mg_cm3", density_range_mg_cm3, ends=("low", "high"),
                      example="(130.0, 900.0)")
    if lo < 10.0 or hi > 3000.0:
        raise ValueError(f"density_range_mg_cm3 must lie within 10-3000 mg HA/cm3, got "
                         f"({lo}, {hi}); calcified plaque is about 130-1000")
    return {"motion_scale": real_in_range("motion_scale", motion_scale, 0.0, 5.0,
                                          hint="1 = the published coronary speeds"),
            "density_range": (lo, hi),
            "share_alpha": real_in_range("share_alpha", share_alpha, 0.05, 100.0,
                                         hint="2 = the default split")}


def _category_of(total):
    """Index into :data:`RISK_CATEGORY_BOUNDS` of a total score (0 only for 0)."""
    if total <= 0.0:
        return 0
    return next(i for i, (_, high) in enumerate(RISK_CATEGORY_BOUNDS) if i and total <= high)


def _screening_lesions(rng, burden, shapes, motions, kvp, body, z_extent, draw):
    """Lesions of a screening patient: its total split among its lesions, placed."""
    total, n = burden
    if n == 0:
        return []
    lines = coronary_centrelines()
    tissue_hu = float(getattr(body, "tissue_hu", 40.0))
    for attempt in range(50):
        m = max(1, n - attempt // 10)      # one lesion fewer after every 10 failed tries
        shares = total * rng.dirichlet(np.full(m, draw["share_alpha"]))
        lesions = _place_lesions(rng, shares, shapes, lines, motions, kvp, tissue_hu,
                                 z_extent, body, draw["density_range"])
        if lesions is not None:
            return lesions
    raise RuntimeError(  # pragma: no cover - one lesion always fits
        f"could not place {n} lesions after 50 attempts; try another seed")


def _patient_category(risk_category, rng):
    """The target risk category: ``risk_category`` checked, or drawn uniformly."""
    if risk_category is None:
        return int(rng.integers(0, len(RISK_CATEGORY_BOUNDS)))
    if isinstance(risk_category, bool) or not isinstance(risk_category, numbers.Integral) \
            or not 0 <= risk_category < len(RISK_CATEGORY_BOUNDS):
        raise ValueError(
            f"risk_category must be an int in 0-{len(RISK_CATEGORY_BOUNDS) - 1} (0: score 0, "
            f"1: 1-10, 2: 11-100, 3: 101-400, 4: > 400) or None, got {risk_category!r}")
    return int(risk_category)


def _check_patient_options(category, n_lesions, shapes, motion, kvp):
    if n_lesions is not None:
        if isinstance(n_lesions, bool) or not isinstance(n_lesions, numbers.Integral) \
                or not 0 <= n_lesions <= 40:
            raise ValueError(f"n_lesions must be an int in 0-40 or None, got {n_lesions!r}")
        if (n_lesions == 0) != (category == 0):
            raise ValueError(
                f"n_lesions={n_lesions} contradicts risk_category={category}: category 0 "
                "(score 0) has no lesions and every other category needs at least one")
    bad = [s for s in shapes if s not in _SHAPES]
    if not shapes or bad:
        raise ValueError(f"shapes must be a non-empty subset of {_SHAPES}, got {shapes!r}")
    boolean("motion", motion)
    real_in_range("kvp", kvp, 70.0, 140.0, unit="kV")


def _check_patient_extent(z_extent_mm):
    z_lo, z_hi = interval("z_extent_mm", z_extent_mm)
    z_all = np.concatenate([np.asarray(pts)[:, 0] for pts in _CENTRELINES_MM.values()])
    if z_lo > z_all.min() - 8.0 or z_hi < z_all.max() + 8.0:
        raise ValueError(
            f"z_extent_mm=({z_lo}, {z_hi}) must contain the coronary arteries with an 8 mm "
            f"margin (z from {z_all.min() - 8.0} to {z_all.max() + 8.0} mm); widen it")
    return z_lo, z_hi


def _artery_motions(rng, heart_rate_bpm, moving, scale=1.0):
    """One motion per artery: CardiacMotion at the patient's heart rate, or Static.

    The per-artery draws (peak speed, in-plane angle, small z component) happen in
    both cases, so ``motion=False`` gives the same lesions as ``motion=True``.
    """
    from phantoms.motion import CardiacMotion, Static

    motions = {}
    for artery in ARTERIES:
        lo, hi = _PEAK_VELOCITY_MM_S[artery]
        peak = float(rng.uniform(lo, hi)) * scale
        ang = rng.uniform(0.0, 2.0 * math.pi)
        direction = (float(rng.normal(0.0, 0.2)), math.sin(ang), math.cos(ang))
        norm = math.sqrt(sum(d * d for d in direction))
        direction = tuple(d / norm for d in direction)
        motions[artery] = (CardiacMotion(direction, peak, heart_rate_bpm=heart_rate_bpm)
                           if moving else Static())
    return motions


def _accepted_lesions(rng, category, n_lesions, shapes, motions, kvp, body, z_extent,
                      draw):
    """Draw patients until the estimated total lies in the category's acceptance band."""
    tissue_hu = float(getattr(body, "tissue_hu", 40.0))
    lines = coronary_centrelines()
    for _attempt in range(50):
        lesions = _draw_lesions(rng, category, n_lesions, shapes, lines, motions, kvp,
                                tissue_hu, z_extent, body, draw)
        if lesions is None:
            continue
        total = float(estimated_agatston(lesions, kvp=kvp, tissue_hu=tissue_hu).sum())
        lo, hi = _ACCEPT_BAND[category]
        if lo <= total <= hi:
            return lesions
    raise RuntimeError(  # pragma: no cover - the ranges above make this practically unreachable
        f"could not draw a patient in risk category {category} after 50 attempts; "
        "try another seed or fewer lesions")


def _in_soft_tissue(body, box, margin_mm=3.0):
    """Box corners and centre (grown by ``margin_mm`` in-plane) lie in soft tissue."""
    lo, hi = box
    ys = np.array([lo[1] - margin_mm, lo[1] - margin_mm, hi[1] + margin_mm,
                   hi[1] + margin_mm, 0.5 * (lo[1] + hi[1])])
    xs = np.array([lo[2] - margin_mm, hi[2] + margin_mm, lo[2] - margin_mm,
                   hi[2] + margin_mm, 0.5 * (lo[2] + hi[2])])
    return bool(np.all(body.inside_tissue(ys, xs)))


def _lesion_shares(rng, category, n_lesions, alpha=2.0):
    """The lesion population: each lesion's share of a target total drawn in the category."""
    lo, hi = _TARGET_RANGE[category]
    target = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    if n_lesions is None:
        n_lo, n_hi = _N_LESIONS_RANGE[category]
        n = int(rng.integers(n_lo, n_hi + 1))
    else:
        n = int(n_lesions)
    return target * rng.dirichlet(np.full(n, alpha))


def _draw_lesions(rng, category, n_lesions, shapes, lines, motions, kvp, tissue_hu,
                  z_extent, body, draw):
    """One candidate patient's lesions (None if one could not be placed)."""
    if category == 0:
        return []
    return _place_lesions(rng, _lesion_shares(rng, category, n_lesions, draw["share_alpha"]),
                          shapes, lines, motions, kvp, tissue_hu, z_extent, body,
                          draw["density_range"])


def _place_lesions(rng, shares, shapes, lines, motions, kvp, tissue_hu, z_extent, body,
                   density_range=_DENSITY_RANGE_MG_CM3):
    """Size each share (density, volume, shape) and place it on an artery, biggest first."""
    from phantoms.materials import hu_per_mg_cm3
    from phantoms.phantom import Lesion

    k = hu_per_mg_cm3(kvp)
    boxes, lesions, counters = [], [], {a: 0 for a in ARTERIES}
    for share in sorted(shares.tolist(), reverse=True):   # big lesions placed first
        density = math.exp(rng.uniform(*np.log(density_range)))
        w = _agatston_weight(tissue_hu + k * density)
        volume = float(np.clip(3.0 * share / max(w, 1.0), *_VOLUME_RANGE_MM3))
        kind = shapes[int(rng.integers(0, len(shapes)))]
        placed = _place_one(rng, kind, volume, lines, boxes, z_extent, body)
        if placed is None:
            return None
        artery, shape, box = placed
        boxes.append((np.asarray(box[0]), np.asarray(box[1])))
        name = f"{artery}_{counters[artery]}_{kind}"
        counters[artery] += 1
        lesions.append(Lesion(shape, density, motion=motions[artery], name=name))
    return lesions


def _place_one(rng, kind, volume, lines, boxes, z_extent, body, tries=200):
    """(artery, shape, box) of a lesion on a random artery wall clear of ``boxes``, or None."""
    arteries = list(_ARTERY_WEIGHTS)
    weights = np.array([_ARTERY_WEIGHTS[a] for a in arteries])
    for _try in range(tries):
        artery = arteries[int(rng.choice(len(arteries), p=weights / weights.sum()))]
        point, tangent = _arc_point(lines[artery], float(rng.uniform(0.05, 0.95)))
        frame = _frame(tangent, rng)
        centre = point + _VESSEL_RADIUS_MM[artery] * frame[1]
        shape = _make_shape(kind, centre, frame, volume, rng)
        box = shape.bounding_box_mm()
        if box[0][0] < z_extent[0] or box[1][0] > z_extent[1]:
            continue
        if not _in_soft_tissue(body, box):
            continue
        if _boxes_clear(box, boxes, _GAP_MM):
            return artery, shape, box
    return None


def lesion_population(n_patients, *, seed, risk_categories="balanced", **patient_kwargs):
    """A list of virtual patients whose risk categories span 0 to > 400.

    Parameters
    ----------
    n_patients : int
        Number of patients (>= 1).
    seed : int or numpy.random.SeedSequence
        Seed of the population; patient i uses the i-th child of
        ``SeedSequence(seed)``, so the population is reproducible and patient i does
        not depend on ``n_patients``.
    risk_categories : "balanced" or sequence of int
        ``"balanced"``: each block of five patients (0-4, 5-9, ...) takes the five
        categories in a seeded random order, so every category appears when
        ``n_patients >= 5`` and patient i does not depend on ``n_patients``; or one
        category index per patient. Unused with ``population="screening"`` (each
        patient draws its own calcium; leave it at "balanced").
    **patient_kwargs
        Passed to :func:`virtual_patient` (``shapes``, ``motion``, ``population``, ...).

    Returns
    -------
    list of Phantom
        Patient i is named ``"virtual_patient_<i>"``.

    Examples
    --------
    >>> from phantoms.library import lesion_population
    >>> pop = lesion_population(5, seed=1)
    >>> [p.name for p in pop][:2]
    ['virtual_patient_0', 'virtual_patient_1']
    """
    import dataclasses

    if isinstance(n_patients, bool) or not isinstance(n_patients, numbers.Integral) \
            or n_patients < 1:
        raise ValueError(f"n_patients must be a positive int, got {n_patients!r}")
    ss = _check_seed(seed)
    if "risk_category" in patient_kwargs:
        raise TypeError("give risk_categories (one per patient), not risk_category")
    n = int(n_patients)
    children = [np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (i,))
                for i in range(n)]
    if patient_kwargs.get("population", "categories") == "screening":
        if not (isinstance(risk_categories, str) and risk_categories == "balanced"):
            raise ValueError(
                "population='screening' draws each patient's calcium; leave risk_categories "
                f"at 'balanced' (got {risk_categories!r}) or use population='categories'")
        return [dataclasses.replace(virtual_patient(child, **patient_kwargs),
                                    name=f"virtual_patient_{i}")
                for i, child in enumerate(children)]
    if isinstance(risk_categories, str):
        if risk_categories != "balanced":
            raise ValueError(
                f"risk_categories must be 'balanced' or a sequence of ints, got "
                f"{risk_categories!r}")
        m = len(RISK_CATEGORY_BOUNDS)
        cats = []
        for block in range((n + m - 1) // m):      # each block of m patients: a permutation
            block_rng = np.random.default_rng(
                np.random.SeedSequence(ss.entropy, spawn_key=ss.spawn_key + (2**31, block)))
            cats.extend(int(c) for c in block_rng.permutation(m))
        cats = cats[:n]
    else:
        cats = list(risk_categories)
        if len(cats) != n:
            raise ValueError(
                f"risk_categories has {len(cats)} entries but n_patients={n}; give one "
                "category per patient")
    out = []
    for i, (child, cat) in enumerate(zip(children, cats)):
        p = virtual_patient(child, risk_category=cat, **patient_kwargs)
        out.append(dataclasses.replace(p, name=f"virtual_patient_{i}"))
    return out

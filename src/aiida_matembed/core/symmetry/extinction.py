"""Extinction analysis: the space groups whose systematic absences agree with the indexed lines, ranked.

A reflection ``h`` is systematically absent in a space group when an operation ``(R, t)`` (``x' = R x + t``,
fractional) leaves it invariant, ``h R = h``, with a non-integral phase ``h · t`` (ITA Vol. A, section 1.6.5;
Giacovazzo et al., *Fundamentals of Crystallography*, ch. 3). The operations of every setting (Hall symbol) of
every group come from spglib's database, so glide and screw conditions of every axis choice and cell choice are
covered: all six settings of the orthorhombic groups, the b-unique cell choices of the monoclinic ones (c, n, a
glides; C, A, I centring), hexagonal axes for the trigonal and hexagonal groups.

For the refined cell of an :class:`~.indexing.IndexingSolution`, all reflections up to the last indexed line are
grouped into clusters of equal ``Q`` (:func:`~.lattice.reflection_clusters`); a cluster is allowed by a setting if
any of its reflections is. Each setting is scored by a log-likelihood of what was observed:

- an indexed line with an allowed cluster within the tolerance: ``log(1 - p_miss)``;
- an indexed line whose clusters are all absent: ``log p_spurious(I)`` with ``p_spurious = 1e-4 + 0.01
  exp(-I / 5)`` (``I``: intensity, 0-100): a strong line that the group forbids is all but impossible, a weak one
  may be an impurity;
- an allowed position where no line was observed within ``resolution`` (an unresolved reflection is hidden, not
  missing; positions closer than ``resolution`` merged): ``log p_miss`` with ``p_miss = 0.3``, the chance that an
  allowed reflection is too weak to be seen.

Groups with the same conditions on the observed range (the same extinction symbol) score the same; they are told
apart by the prior frequency of each space group among the 88,678 Materials Project structures tabulated in
pyxtal's database (``pyxtal/database/spg_num_wps_mp.csv``; Fredericks et al., Comput. Phys. Commun. 261, 107810
(2021)), plus one. Probabilities are ``exp(logL + log prior)`` normalised over the groups of the lattice system.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import numpy as np

from .lattice import reflection_clusters, two_theta_of_q

__all__ = ('GroupScore', 'rank_space_groups', 'space_group_prior', 'systematically_absent')

P_MISS = 0.3
"""Chance that an allowed reflection is not observed (too weak)."""

_SYSTEM_NUMBERS = {
    'triclinic': range(1, 3),
    'monoclinic': range(3, 16),
    'orthorhombic': range(16, 75),
    'tetragonal': range(75, 143),
    'hexagonal': range(143, 195),
    'cubic': range(195, 231),
}
"""Space-group numbers indexed in each lattice system (hexagonal axes: trigonal and hexagonal groups)."""


def crystal_system_of(number: int) -> str:
    """Crystal system of space group ``number`` (1-230)."""
    for name, low in (('triclinic', 1), ('monoclinic', 3), ('orthorhombic', 16), ('tetragonal', 75),
                      ('trigonal', 143), ('hexagonal', 168), ('cubic', 195)):  # fmt: skip
        if number >= low:
            found = name
    return found


@dataclass(frozen=True)
class _Setting:
    hall_number: int
    number: int
    symbol: str
    """International short symbol of this setting (e.g. ``P 1 2_1/n 1``)."""
    standard: str
    """Short symbol of the standard setting."""
    rotations: np.ndarray
    translations: np.ndarray
    """Operations with a non-integral translation only (the others make no reflection absent)."""


@cache
def _settings(lattice_system: str) -> tuple[_Setting, ...]:
    import spglib

    numbers = _SYSTEM_NUMBERS[lattice_system]
    standard: dict[int, str] = {}
    out = []
    for hall in range(1, 531):
        kind = spglib.get_spacegroup_type(hall)
        if kind is None or kind.number not in numbers:
            continue
        standard.setdefault(kind.number, kind.international_short)
        choice = kind.choice
        if lattice_system == 'monoclinic' and 'b' not in choice:
            continue  # the indexing's monoclinic cells have b unique
        if lattice_system == 'hexagonal' and choice == 'R':
            continue  # rhombohedral axes; the indexing uses hexagonal ones
        ops = spglib.get_symmetry_from_database(hall)
        if ops is None:
            continue
        rotations = np.asarray(ops['rotations'], dtype=np.int64)
        translations = np.asarray(ops['translations'], dtype=np.float64)
        moving = np.abs(translations - np.round(translations)).max(axis=1) > 1e-6
        out.append(
            _Setting(hall, kind.number, kind.international_full if lattice_system in ('monoclinic', 'orthorhombic')
                     else kind.international_short, standard[kind.number], rotations[moving], translations[moving])
        )  # fmt: skip
    return tuple(out)


def systematically_absent(hkl: np.ndarray, rotations: np.ndarray, translations: np.ndarray) -> np.ndarray:
    """``(n,)`` whether each reflection of ``hkl`` ``(n, 3)`` is absent under the operations ``(R, t)``."""
    hkl = np.asarray(hkl, dtype=np.int64)
    absent = np.zeros(len(hkl), dtype=bool)
    for rotation, translation in zip(rotations, translations, strict=True):
        fixed = (hkl @ rotation == hkl).all(axis=1)
        phase = hkl @ translation
        absent |= fixed & (np.abs(phase - np.round(phase)) > 1e-6)
    return absent


@lru_cache(maxsize=1)
def _mp_counts() -> np.ndarray:
    counts = np.zeros(231)
    path = resources.files('pyxtal') / 'database' / 'spg_num_wps_mp.csv'
    with path.open() as handle:
        for row in csv.DictReader(handle):
            counts[int(row['spg'])] += float(row['count'])
    return counts


def space_group_prior(number: int) -> float:
    """Frequency of space group ``number`` among Materials Project structures (pyxtal's table), plus one, over all."""
    counts = _mp_counts()
    return float((counts[number] + 1) / (counts[1:].sum() + 230))


@dataclass(frozen=True)
class GroupScore:
    """A space group and how well its systematic absences agree with the indexed lines."""

    number: int
    symbol: str
    """Short international symbol of the standard setting."""
    setting: str
    """Symbol of the setting that fits the indexed cell best (axes as indexed)."""
    log_likelihood: float
    probability: float
    """Posterior probability among the groups of the lattice system (prior times likelihood)."""
    n_violations: int
    """Indexed lines that the setting forbids."""

    def as_dict(self) -> dict[str, Any]:
        return {'number': self.number, 'symbol': self.symbol, 'setting': self.setting,
                'log_likelihood': self.log_likelihood, 'probability': self.probability,
                'n_violations': self.n_violations}  # fmt: skip


def rank_space_groups(
    lattice_system: str,
    g6: Any,
    zero_shift: float,
    two_theta: Any,
    intensity: Any,
    wavelength: float,
    *,
    tolerance: float = 0.03,
    resolution: float | None = None,
    centring: str | None = None,
) -> list[GroupScore]:
    """Space groups of ``lattice_system`` ranked by their absences on the observed lines (module docstring).

    :param g6: refined reciprocal metric of the cell (Å^-2); :param zero_shift: its zero shift (degrees).
    :param two_theta: and :param intensity: observed lines (degrees, 0-100) at ``wavelength`` (Å).
    :param tolerance: ``|Δ2θ|`` (degrees) within which a line and a reflection coincide.
    :param resolution: (degrees) a reflection closer than this to an observed line is not missing (it may be
        hidden in that line's profile); default ``3 tolerance``.
    :param centring: if given, only groups of that lattice centring are ranked (``None``: all).
    """
    if lattice_system not in _SYSTEM_NUMBERS:
        raise ValueError(f'unknown lattice system {lattice_system!r}; known: {", ".join(_SYSTEM_NUMBERS)}')
    x = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    settings = _settings(lattice_system)
    if lattice_system == 'triclinic' or not len(x):
        return _normalise([(s, 0.0, 0) for s in settings])
    q_last = float((2 * math.sin(math.radians(x[-1] - zero_shift) / 2) / wavelength) ** 2)
    clusters = reflection_clusters(np.asarray(g6, dtype=float), q_last * 1.01)
    tt = two_theta_of_q(clusters.q, wavelength) + zero_shift
    # which clusters each observed line may be
    low = np.searchsorted(tt, x - tolerance)
    high = np.searchsorted(tt, x + tolerance, side='right')
    indexed = high > low
    # clusters with no line within the resolution, merged into positions
    resolution = 3 * tolerance if resolution is None else float(resolution)
    nearest = np.abs(x[np.clip(np.searchsorted(x, tt), 0, len(x) - 1)] - tt)
    nearest = np.minimum(nearest, np.abs(x[np.clip(np.searchsorted(x, tt) - 1, 0, len(x) - 1)] - tt))
    unobserved = np.flatnonzero((nearest > resolution) & (tt <= x[-1] + tolerance))
    position = np.cumsum(np.concatenate([[True], np.diff(tt[unobserved]) > resolution])) - 1 if len(unobserved) else (
        np.zeros(0, dtype=np.int64))  # fmt: skip
    spurious = np.log(1e-4 + 0.01 * np.exp(-y[indexed] / 5))
    hkl = clusters.hkl
    results = []
    for setting in settings:
        if centring is not None and setting.symbol[0] != centring:
            continue
        absent = systematically_absent(hkl, setting.rotations, setting.translations)
        allowed = clusters.any_allowed(~absent)
        cumulative = np.concatenate([[0], np.cumsum(allowed)])
        line_allowed = (cumulative[high[indexed]] - cumulative[low[indexed]]) > 0
        n_positions = len(np.unique(position[allowed[unobserved]])) if len(unobserved) else 0
        log_l = float(np.sum(np.where(line_allowed, math.log(1 - P_MISS), spurious)) + n_positions * math.log(P_MISS))
        results.append((setting, log_l, int((~line_allowed).sum())))
    return _normalise(results)


def _normalise(results: list[tuple[_Setting, float, int]]) -> list[GroupScore]:
    best: dict[int, tuple[_Setting, float, int]] = {}
    for setting, log_l, violations in results:
        if setting.number not in best or log_l > best[setting.number][1]:
            best[setting.number] = (setting, log_l, violations)
    if not best:
        return []
    numbers = sorted(best)
    log_post = np.array([best[n][1] + math.log(space_group_prior(n)) for n in numbers])
    probability = np.exp(log_post - log_post.max())
    probability /= probability.sum()
    scores = [
        GroupScore(n, best[n][0].standard, best[n][0].symbol, best[n][1], float(p), best[n][2])
        for n, p in zip(numbers, probability, strict=True)
    ]
    return sorted(scores, key=lambda s: (-s.probability, s.number))

"""Agreement of simulated powder peaks with pymatgen's ``XRDCalculator`` (the acceptance check of issue #4).

Every pymatgen peak above ``threshold`` (on the 0-100 scale) must have a peak of ours within ``two_theta_tol``
degrees, with scaled intensity within ``intensity_tol`` and the same hkl families; no peak of ours above
``threshold`` may lack a pymatgen peak within ``two_theta_tol``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.xrd import Peaks

__all__ = ('PeakAgreement', 'compare_with_pymatgen')


@dataclass
class PeakAgreement:
    """Deviations of one pattern from pymatgen's."""

    max_two_theta: float = 0.0
    """Largest |Δ2θ| (degrees) over matched peaks."""
    max_intensity: float = 0.0
    """Largest |ΔI| (0-100 scale) over matched peaks."""
    problems: list[str] = field(default_factory=list)
    """Missing or extra peaks, deviations beyond tolerance, different hkl families."""

    @property
    def ok(self) -> bool:
        return not self.problems


def _families(entries: Any) -> set[tuple[tuple[int, ...], int]]:
    return {(tuple(int(v) for v in e['hkl']), int(e['multiplicity'])) for e in entries}


def compare_with_pymatgen(
    ours: Peaks,
    expected: Any,
    *,
    threshold: float = 0.5,
    two_theta_tol: float = 1e-3,
    intensity_tol: float = 0.5,
    labels: Any = None,
) -> PeakAgreement:
    """Compare our peaks with a pymatgen ``DiffractionPattern`` (``x``, ``y``, ``hkls``).

    :param labels: the pymatgen pattern whose hkl families are compared (default ``expected``): for peaks
        labelled in the conventional standard setting, pymatgen's pattern of the standard conventional cell
        (``SpacegroupAnalyzer.get_refined_structure()``), matched to ``expected`` by 2θ.
    """
    result = PeakAgreement()
    x, y = np.asarray(expected.x), np.asarray(expected.y)
    labels = expected if labels is None else labels
    label_x = np.asarray(labels.x)
    for k in np.flatnonzero(y > threshold):
        if not len(ours):
            result.problems.append(f'pymatgen peak at {x[k]:.4f}° ({y[k]:.2f}) missing')
            continue
        nearest = int(np.argmin(np.abs(ours.two_theta - x[k])))
        d_two_theta = abs(float(ours.two_theta[nearest] - x[k]))
        if d_two_theta > two_theta_tol:
            result.problems.append(f'pymatgen peak at {x[k]:.4f}° ({y[k]:.2f}) missing (nearest {d_two_theta:.2e}°)')
            continue
        d_intensity = abs(float(ours.intensity[nearest] - y[k]))
        result.max_two_theta = max(result.max_two_theta, d_two_theta)
        result.max_intensity = max(result.max_intensity, d_intensity)
        if d_intensity > intensity_tol:
            result.problems.append(f'peak at {x[k]:.4f}°: intensity {ours.intensity[nearest]:.3f} vs {y[k]:.3f}')
        mine = {(hkl, mult) for hkl, mult in ours.hkls[nearest].items()}
        label = int(np.argmin(np.abs(label_x - x[k]))) if len(label_x) else -1
        theirs = labels.hkls[label] if label >= 0 and abs(label_x[label] - x[k]) <= two_theta_tol else []
        if mine != _families(theirs):
            result.problems.append(f'peak at {x[k]:.4f}°: hkl families {sorted(mine)} vs {theirs}')
    for k in np.flatnonzero(ours.intensity > threshold):
        if not len(x) or np.abs(x - ours.two_theta[k]).min() > two_theta_tol:
            result.problems.append(f'extra peak at {ours.two_theta[k]:.4f}° ({ours.intensity[k]:.2f})')
    return result

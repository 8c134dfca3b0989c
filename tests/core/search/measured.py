"""Measured-like powder patterns rendered from pymatgen's XRDCalculator (another program than the one tested)."""

import math

import numpy as np

GRID = np.round(np.arange(10.0, 110.0 + 1e-9, 0.02), 6)
CU_KA1, CU_KA2 = 1.540598, 1.544426


def render(structures, fractions=(1.0,), *, strain=0.0, zero=0.0, fwhm=0.1, doublet=True, noise_seed=0, counts=5000.0):
    """Counts on GRID: pymatgen Cu K-alpha1 peaks of each (isotropically strained) structure weighted by
    w / (M V) (Hill & Howard 1987), a K-alpha2 companion at half intensity, pseudo-Voigt (eta 0.5) peaks, a flat
    background of 5 % and Poisson noise."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    calculator = XRDCalculator('CuKa1')
    signal = np.zeros_like(GRID)
    for structure, fraction in zip(structures, fractions, strict=True):
        strained = structure.copy()
        strained.scale_lattice(structure.volume * (1 + strain) ** 3)
        pattern = calculator.get_pattern(strained, scaled=False, two_theta_range=(9, 111))
        centres = np.asarray(pattern.x) + zero
        heights = np.asarray(pattern.y) * fraction / (structure.composition.weight * structure.volume)
        if doublet:
            sine = np.sin(np.radians(np.asarray(pattern.x)) / 2) * CU_KA2 / CU_KA1
            centres = np.concatenate([centres, np.degrees(2 * np.arcsin(sine)) + zero])
            heights = np.concatenate([heights, 0.5 * heights])
        x = (GRID[None, :] - centres[:, None]) / fwhm
        shape = 0.5 * math.sqrt(4 * math.log(2) / math.pi) * np.exp(-4 * math.log(2) * x**2) + 0.5 * (2 / math.pi) / (
            1 + 4 * x**2
        )
        signal += heights @ shape
    signal *= counts / signal.max()
    return np.random.default_rng(noise_seed).poisson(signal + 0.05 * counts).astype(float)

"""Property: random valid crystals never crash a registered representation, nor the XRD simulator.

Hypothesis draws a lattice (lengths 2.5-12 Å, angles 60-120° with a positive volume), 1-6 sites of elements
from H to Bi and fractional coordinates; structures with two sites closer than 0.5 Å (periodic images
included) are not valid and are discarded. Each representation must return a finite row, or (errors='record')
a failure with a message — never raise. Compositional representations may record unknown elements; structural
ones must succeed on every valid ordered crystal.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.representations import get_representation, list_representations
from aiida_matembed.core.structures import MIN_INTERATOMIC_DISTANCE, InvalidStructureError, validate_structure
from aiida_matembed.core.xrd import XrdSimulator

ELEMENTS = [
    1,
    3,
    6,
    7,
    8,
    9,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    19,
    20,
    22,
    26,
    29,
    30,
    31,
    38,
    40,
    47,
    50,
    53,
    56,
    57,
    74,
    79,
    83,
]
NAMES = [n for n in list_representations() if n != 'matembed.chgnet']  # chgnet: ~0.1 s a structure, own contract


@st.composite
def crystals(draw):
    lengths = [draw(st.floats(2.5, 12.0)) for _ in range(3)]
    angles = [draw(st.floats(60.0, 120.0)) for _ in range(3)]
    lattice = Lattice.from_parameters(*lengths, *angles)
    if not lattice.volume > 0.2 * np.prod(lengths):  # nearly flat cells are not crystals anyone has
        angles = [90.0, 90.0, 90.0]
        lattice = Lattice.from_parameters(*lengths, *angles)
    n = draw(st.integers(1, 6))
    species = [draw(st.sampled_from(ELEMENTS)) for _ in range(n)]
    coords = [[draw(st.floats(0, 1, exclude_max=True)) for _ in range(3)] for _ in range(n)]
    structure = Structure(lattice, species, coords)
    try:
        validate_structure(structure, min_distance=MIN_INTERATOMIC_DISTANCE)
    except InvalidStructureError:
        draw(st.just(None).filter(lambda _: False))  # not a valid crystal: discard the example
    return structure


@pytest.fixture(scope='module')
def representations():
    return {name: get_representation(name) for name in NAMES}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(batch=st.lists(crystals(), min_size=1, max_size=3))
def test_random_valid_crystals_never_crash_any_representation(representations, batch):
    for name, rep in representations.items():
        result = rep.featurize_many(batch, errors='record')
        assert result.features.shape[0] == len(batch)
        failed = {f.index: f.message for f in result.failures}
        for index in range(len(batch)):
            if index in failed:
                assert failed[index], name
                assert rep.input_kind == 'composition', f'{name} refused a valid crystal: {failed[index]}'
            else:
                assert np.isfinite(result.features[index]).all(), name
    for peaks in XrdSimulator('CuKa').peaks_many(batch, errors='record'):
        assert peaks.error is None
        assert np.all(np.diff(peaks.two_theta) > 0) and len(peaks.hkls) == len(peaks)
        if len(peaks):
            assert peaks.intensity.max() == pytest.approx(100.0)

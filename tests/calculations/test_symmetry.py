"""``matembed.predict_symmetry``: the stored result equals the core's on the same pattern; bad options refused."""

import numpy as np
import pytest
from aiida import orm

from aiida_matembed.calculations.symmetry import predict_symmetry
from aiida_matembed.core.symmetry import predict_symmetry as predict
from aiida_matembed.core.xrd import Peaks
from aiida_matembed.data.xrd import XrdPatternsData

from ..core.symmetry.test_indexing import rutile
from ..core.symmetry.test_predict import GRID, measured_profile


@pytest.fixture
def pattern(aiida_profile_clean):
    counts = measured_profile(rutile()).astype(np.float32)
    no_peaks = Peaks(np.zeros(0), np.zeros(0), [], np.zeros(0), np.zeros(0, dtype=int))
    return XrdPatternsData(GRID, counts[None], [no_peaks], settings={'wavelength': 'CuKa'}).store(), counts


def test_result_equals_the_core(pattern):
    node, counts = pattern
    outputs, process = predict_symmetry.run_get_node(node, orm.Dict({'wavelength': 'CuKa', 'top_k': 3}))
    core = predict(GRID, counts.astype(float), 'CuKa', top_k=3)
    assert outputs['symmetry']['space_group'] == list(core.space_group)
    assert outputs['symmetry']['cell']['a'] == pytest.approx(core.cell.a)
    assert process.is_finished_ok and process.inputs.pattern.uuid == node.uuid


def test_calcfunction_refuses_unknown_options(pattern):
    with pytest.raises(ValueError, match='unknown option'):
        predict_symmetry(pattern[0], orm.Dict({'wavelenght': 'CuKa'}))


def test_calcfunction_refuses_a_node_without_profile(aiida_profile_clean):
    with pytest.raises(ValueError, match='one measured profile'):
        predict_symmetry(XrdPatternsData().store(), orm.Dict({}))

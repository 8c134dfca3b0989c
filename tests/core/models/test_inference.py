"""``run_model``: one entry point for every model kind; bad rows recorded, never a NaN success."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.models import load_model
from aiida_matembed.core.models.inference import output_labels, run_model, run_model_on_patterns


@pytest.fixture(scope='module')
def cmml():
    return load_model('matembed.cmml', device='cpu')


def test_atoms_without_neighbours_embed_the_same_in_any_batch(cmml, examples):
    """An atom with no neighbour within the cutoff: PyG's mean over no edges is 0, whatever the batch."""
    isolated = Structure(Lattice.cubic(20.0), ['Cu'], [[0, 0, 0]])
    nacl = next(e.structure for e in examples if e.label == 'NaCl')
    alone = run_model(cmml, [isolated], batch_size=1)
    together = run_model(cmml, [isolated, nacl], batch_size=2)
    assert not alone.failures and np.isfinite(alone.matrix).all()
    np.testing.assert_allclose(alone.matrix[0], together.matrix[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(together.matrix[1], cmml.embed_structures([nacl])[0], rtol=1e-5, atol=1e-6)


def test_every_kind_and_modality(cmml, examples):
    structures = [e.structure for e in examples if e.structure.is_ordered][:3]
    xrd = run_model(cmml, structures, modality='xrd')
    np.testing.assert_allclose(xrd.matrix, cmml.embed_xrd(structures), rtol=1e-5, atol=1e-6)
    symmetry = load_model('matembed.xrd_symmetry', device='cpu')
    result = run_model(symmetry, structures, batch_size=2)
    assert result.matrix.shape == (3, 237) and result.labels[0] == 'p_triclinic' and result.labels[-1] == 'p_sg230'
    np.testing.assert_allclose(result.matrix[:, :7].sum(axis=1), 1.0, rtol=1e-5)
    patterns = symmetry.xrd_input.profiles(structures, errors='record')
    patterns[1] = np.nan  # a failed simulation stays a failure
    on_patterns = run_model_on_patterns(symmetry, patterns)
    assert [f.index for f in on_patterns.failures] == [1]
    np.testing.assert_allclose(on_patterns.matrix[[0, 2]], result.matrix[[0, 2]], rtol=1e-5, atol=1e-6)
    assert output_labels(load_model('matembed.xrd_vae', device='cpu')) == ['z_0', 'z_1']
    with pytest.raises(ValueError, match='reads xrd, not'):
        run_model(symmetry, structures, modality='structure')

"""``matembed.chgnet`` pinned against CHGNet's own ``predict_structure(..., return_crystal_feas=True)``.

Needs the optional extra ``chgnet`` (CHGNet 0.4, weights in the wheel); without it only the option checks
and the missing-extra message are tested. Reference: Deng et al., Nat. Mach. Intell. 5, 1031 (2023).
"""

import sys
import warnings

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from aiida_matembed.core.representations import FeaturizationError, foundation, get_representation


def _fcc(a, species, coords):
    """A primitive cell of a face-centred cubic lattice of cube edge ``a`` (Å)."""
    return Structure(Lattice([[0, a / 2, a / 2], [a / 2, 0, a / 2], [a / 2, a / 2, 0]]), species, coords)


def _structures():
    """Ordered crystals built with pymatgen: rock salt, diamond, cubic perovskite, wurtzite."""
    u = 0.382
    return [
        _fcc(5.64, ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        _fcc(5.431, ['Si', 'Si'], [[0, 0, 0], [0.25, 0.25, 0.25]]),
        Structure(
            Lattice.cubic(3.905),
            ['Sr', 'Ti', 'O', 'O', 'O'],
            [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
        ),
        Structure(
            Lattice.hexagonal(3.25, 5.21),
            ['Zn', 'Zn', 'O', 'O'],
            [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, u], [2 / 3, 1 / 3, 0.5 + u]],
        ),
    ]


def _americium_dioxide():
    """Fluorite AmO2: americium (Z = 95) is beyond CHGNet's elements."""
    return _fcc(5.38, ['Am', 'O', 'O'], [[0, 0, 0], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75]])


@pytest.fixture(scope='module')
def reference():
    """CHGNet's own crystal features of ``_structures()``, from a freshly loaded pretrained model."""
    pytest.importorskip('chgnet')
    from chgnet.model import CHGNet

    model = CHGNet.load(use_device='cpu', verbose=False)
    with warnings.catch_warnings():  # CHGNet's own "Converting a tensor with requires_grad=True to a scalar"
        warnings.simplefilter('ignore', UserWarning)
        predictions = model.predict_structure(_structures(), return_crystal_feas=True, batch_size=16)
    return np.stack([p['crystal_fea'] for p in predictions]).astype(float)


@pytest.fixture(scope='module')
def chgnet():
    pytest.importorskip('chgnet')
    return get_representation('matembed.chgnet')


@pytest.fixture(scope='module')
def singles(chgnet):
    """Features of each of ``_structures()`` featurised alone."""
    return np.stack([chgnet.featurize(s) for s in _structures()])


def test_float32_features_are_chgnets_own(reference, capfd):
    rep = get_representation('matembed.chgnet', precision='float32')
    features = rep.featurize_many(_structures()).features
    assert capfd.readouterr().out == '', 'CHGNet printed to stdout'
    assert features.shape == (4, 64)
    np.testing.assert_allclose(features, reference, rtol=1e-6, atol=1e-6)


def test_float64_features_equal_chgnets_to_float32_precision(chgnet, reference, singles):
    features = chgnet.featurize_many(_structures()).features
    np.testing.assert_allclose(features, reference, rtol=1e-5, atol=1e-5 * np.abs(reference).max())
    np.testing.assert_allclose(features, singles, rtol=1e-10, atol=1e-10)  # no dependence on the batch
    assert chgnet.feature_labels() == [f'chgnet_{i}' for i in range(64)]


def test_features_are_extensive_sums_over_atoms(chgnet, singles):
    zno = _structures()[3]
    doubled = chgnet.featurize(zno.make_supercell([1, 1, 2], in_place=False))
    np.testing.assert_allclose(doubled, 2 * singles[3], rtol=1e-10, atol=1e-10)


def test_heavy_element_fails_alone(chgnet, singles):
    good = _structures()
    result = chgnet.featurize_many([good[0], _americium_dioxide(), *good[1:]], errors='record')
    assert [f.index for f in result.failures] == [1]
    assert result.failures[0].error_type == 'InvalidStructureError'
    assert 'element Am (Z = 95)' in result.failures[0].message
    assert np.isnan(result.features[1]).all()
    np.testing.assert_allclose(result.features[[0, 2, 3, 4]], singles, rtol=1e-10, atol=1e-10)
    with pytest.raises(FeaturizationError, match=r'structure 1: element Am \(Z = 95\) is not supported by CHGNet'):
        chgnet.featurize_many([good[0], _americium_dioxide()])


def test_partial_occupancy_and_isolated_atoms_are_refused(chgnet, singles):
    disordered = Structure(Lattice.cubic(4.2), [{'Na': 0.5, 'K': 0.5}, 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
    lonely = Structure(Lattice.cubic(10.0), ['Cu'], [[0, 0, 0]])  # nearest image 10 Å away: no edge within 6 Å
    si = _structures()[1]
    result = chgnet.featurize_many([disordered, si, lonely], errors='record')
    assert [(f.index, f.error_type) for f in result.failures] == [
        (0, 'PartiallyOccupiedError'),
        (2, 'InvalidStructureError'),
    ]
    assert 'partially occupied' in result.failures[0].message
    assert 'isolated atom' in result.failures[1].message
    np.testing.assert_allclose(result.features[1], singles[1], rtol=1e-10, atol=1e-10)


def test_a_failing_batch_is_recomputed_one_structure_at_a_time(chgnet, singles, monkeypatch):
    """Should CHGNet raise on a batch despite the checks, only the culprit fails."""
    nacl, _, _, zno = _structures()
    model = chgnet._model()
    forward = model.forward

    def fragile_forward(graphs, **kwargs):
        if any(29 in g.atomic_number.tolist() for g in graphs):
            raise RuntimeError('simulated CHGNet failure on Cu')
        return forward(graphs, **kwargs)

    monkeypatch.setattr(model, 'forward', fragile_forward)
    copper = _fcc(3.61, ['Cu'], [[0, 0, 0]])
    result = chgnet.featurize_many([nacl, copper, zno], errors='record')
    assert [(f.index, f.message) for f in result.failures] == [(1, 'simulated CHGNet failure on Cu')]
    np.testing.assert_allclose(result.features[[0, 2]], singles[[0, 3]], rtol=1e-10, atol=1e-10)


def test_model_loading_is_quiet(capfd):
    pytest.importorskip('chgnet')
    model = foundation._load_model.__wrapped__('0.2.0', 'cpu', 'float32')  # uncached: really loads
    assert capfd.readouterr().out == ''
    assert model.version == '0.2.0'


@pytest.mark.parametrize(
    ('params', 'message'),
    [
        ({'model_version': '9.9.9'}, "unknown CHGNet model_version '9.9.9'; shipped checkpoints: 0.3.0, 0.2.0"),
        ({'precision': 'float16'}, "precision must be 'float64' or 'float32'"),
        ({'batch_size': 0}, r'batch_size must be an integer in \[1, '),
        ({'batch_size': 2.5}, 'batch_size must be an integer'),
        ({'batch_size': True}, 'batch_size must be an integer'),
        ({'device': 'tpu'}, "device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"),
        ({'cutoff': 5.0}, r"unknown option\(s\) \['cutoff'\]"),
    ],
)
def test_bad_options_are_rejected(params, message):
    with pytest.raises(ValueError, match=message):
        get_representation('matembed.chgnet', **params)


def test_cuda_without_a_gpu_is_a_clear_error():
    pytest.importorskip('chgnet')
    import torch

    if torch.cuda.is_available():
        pytest.skip('a GPU is present')
    rep = get_representation('matembed.chgnet', device='cuda')  # constructible: the options are valid
    from aiida_matembed.core.device import NoGpuError

    with pytest.raises(NoGpuError, match=r"device 'cuda' requested but torch .* sees no GPU"):
        rep.featurize(_structures()[0])


def test_missing_extra_gives_the_install_command(monkeypatch):
    # a mock: the real chgnet may well be installed, so make its import fail as if it were not
    monkeypatch.setitem(sys.modules, 'chgnet', None)
    monkeypatch.setitem(sys.modules, 'chgnet.model', None)
    rep = get_representation('matembed.chgnet')  # listed and constructible without the package
    assert rep.n_features == 64
    hint = r'matembed\.chgnet needs the optional extra: pip install "aiida-matembed\[chgnet\]"'
    with pytest.raises(ImportError, match=hint):
        rep.featurize_many(_structures()[:1], errors='record')

"""Networks and helpers against references: crystal systems (pymatgen), kNN (scikit-learn), graph subsets."""

import numpy as np
import pytest
import torch
from pymatgen.symmetry.groups import SpaceGroup
from sklearn.model_selection import LeaveOneOut, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from aiida_matembed.core.models import CRYSTAL_SYSTEMS, GraphInput, crystal_system_of
from aiida_matembed.core.models.inputs import subset_graph_arrays
from aiida_matembed.core.models.networks import CmmlNet, XrdEncoder, log_q_windows, space_group_to_system_index
from aiida_matembed.core.models.training import knn_accuracy


def test_crystal_systems_match_pymatgen_for_all_230_groups():
    for number in range(1, 231):
        assert crystal_system_of(number) == SpaceGroup.from_int_number(number).crystal_system
    index = space_group_to_system_index()
    assert index.shape == (230,) and CRYSTAL_SYSTEMS[int(index[224])] == 'cubic'
    for bad in (0, 231, -1):
        with pytest.raises(ValueError, match='1..230'):
            crystal_system_of(bad)


def test_knn_accuracy_matches_scikit_learn_leave_one_out():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 2))
    y = (x[:, 0] + 0.5 * rng.normal(size=60) > 0).astype(int) + (x[:, 1] > 1).astype(int)
    reference = cross_val_predict(KNeighborsClassifier(5), x, y, cv=LeaveOneOut())
    # ties: scikit-learn breaks them towards the smallest label, as torch's argmax does
    assert knn_accuracy(x, y, k=5) == pytest.approx((reference == y).mean())


def test_subset_graph_arrays_equals_building_the_subset(examples):
    graph_input = GraphInput(cutoff=5.0)
    structures = [e.structure for e in examples if e.structure.is_ordered]
    arrays, rows, failures = graph_input.arrays(structures)
    assert not failures and rows == list(range(len(structures)))
    pick = np.array([4, 0, 7, 7, 2])
    subset = subset_graph_arrays(arrays, pick)
    direct, _, _ = graph_input.arrays([structures[i] for i in pick])
    for a, b in zip(subset, direct, strict=True):
        np.testing.assert_array_equal(a, b)


def test_xrd_encoder_checks_its_input_length():
    encoder = XrdEncoder(n_points=101, channels=(4, 8), positions=4, hidden=16, out_dim=8)
    assert encoder(torch.rand(3, 101)).shape == (3, 8)
    with pytest.raises(ValueError, match=r'shape \(N, 101\)'):
        encoder(torch.rand(3, 100))


def test_cmml_embeddings_are_unit_vectors(examples):
    graph_input = GraphInput(cutoff=5.0)
    arrays, _, _ = graph_input.arrays([e.structure for e in examples[:4]])
    net = CmmlNet(
        crystal={'atom_dim': graph_input.atom_dim, 'edge_dim': graph_input.edge_dim, 'hidden': 16, 'layers': 2},
        xrd={'n_points': 201, 'channels': (4, 8), 'positions': 4, 'hidden': 16},
        embedding_dim=12,
    ).eval()
    with torch.no_grad():
        g = net.embed_graphs(graph_input.batch(arrays))
        x = net.embed_patterns(torch.rand(4, 201))
    assert g.shape == x.shape == (4, 12)
    np.testing.assert_allclose(g.norm(dim=1).numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(x.norm(dim=1).numpy(), 1.0, rtol=1e-5)


@pytest.mark.parametrize('max_neighbors', [12, 200])
def test_inference_convolutions_equal_torch_geometric_cgconv(examples, max_neighbors):
    """The regrouped no-grad path against PyG's ``CGConv`` (the training path), on real crystal graphs.

    With 12 neighbours every atom has the same number of edges (the dense reshape path); with 200 and a
    6 Å cutoff the counts differ between atoms (the scatter path).
    """
    from aiida_matembed.core.models.networks import CrystalEncoder

    structures = [e.structure for e in examples if e.structure.is_ordered]
    graph_input = GraphInput(cutoff=6.0, max_neighbors=max_neighbors)
    arrays, _, _ = graph_input.arrays(structures, errors='record')
    batch = graph_input.batch(arrays)
    torch.manual_seed(0)
    encoder = CrystalEncoder(batch.x.shape[1], batch.edge_attr.shape[1], hidden=32, layers=3, out_dim=16)
    for conv in encoder.convs:  # non-trivial running statistics
        conv.bn.running_mean.uniform_(-0.5, 0.5)
        conv.bn.running_var.uniform_(0.5, 2.0)
    encoder.eval()
    with torch.enable_grad():
        reference = encoder(batch).detach()
    with torch.no_grad():
        fast = encoder(batch)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)


GRID = {'start': 10.0, 'step': 0.05, 'wavelength': 1.54184}  # CuKa as XrdSettings simulates it


def test_log_q_windows_cover_the_grid_in_order():
    index, mask = log_q_windows(2001, out_points=2048, **GRID)
    used = index[mask]
    assert set(used.tolist()) == set(range(2001))  # no 2θ point is skipped
    assert mask.sum(1).min() >= 2
    first = torch.where(mask, index, 10**6).amin(1)
    assert torch.all(torch.diff(first) >= 0)
    with pytest.raises(ValueError, match='0 < 2θ start < end < 180'):
        log_q_windows(2001, 10.0, 0.1, 1.5406, 100)  # ends at 210°
    with pytest.raises(ValueError, match='at least 2 points'):
        log_q_windows(2001, out_points=1, **GRID)


def test_log_q_axis_turns_a_lattice_scaling_into_a_shift():
    """Bragg's law: scaling a cubic lattice by s moves every peak by -ln(s) in ln Q, whatever its hkl."""
    from pymatgen.core import Lattice, Structure

    from aiida_matembed.core.xrd import XrdSettings

    xrd = XrdSettings(step=0.05, fwhm=0.1)
    scale = 1.06
    cells = [Structure(Lattice.cubic(a), ['Cu'] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
             for a in (3.61, 3.61 * scale)]  # fmt: skip
    patterns = torch.as_tensor(xrd.profiles(cells))
    points = 4096
    index, mask = log_q_windows(xrd.n_points, out_points=points, **GRID)
    resampled = torch.where(mask, patterns[:, index], -1.0).amax(2).numpy()
    q = [np.log(4 * np.pi * np.sin(np.radians(t / 2)) / GRID['wavelength']) for t in (10.0, 110.0)]
    delta = (q[1] - q[0]) / (points - 1)
    # the three strongest peaks of each, as ln Q bins; Cu K-alpha2 shoulders are far weaker
    tops = []
    for row in resampled:
        peaks = np.flatnonzero((row[1:-1] > row[:-2]) & (row[1:-1] >= row[2:]) & (row[1:-1] > 0.2)) + 1
        tops.append(np.sort(peaks[np.argsort(-row[peaks])[:3]]))
    np.testing.assert_allclose(tops[0] - tops[1], np.log(scale) / delta, atol=1.5)
    encoder = XrdEncoder(xrd.n_points, channels=(4,), positions=4, hidden=8, out_dim=3, axis='log_q', grid=GRID)
    assert encoder(patterns.float()).shape == (2, 3)
    assert not any(key.startswith('window') for key in encoder.state_dict())  # derived, not saved


def test_xrd_encoder_axis_errors():
    with pytest.raises(ValueError, match="axis must be 'two_theta' or 'log_q'"):
        XrdEncoder(2001, axis='q')
    with pytest.raises(ValueError, match='needs the input grid'):
        XrdEncoder(2001, axis='log_q')

"""Contract checks for :class:`~aiida_matembed.core.representations.Representation` implementations.

Each check takes a representation instance (and optionally structures) and raises ``AssertionError``
with an explanation when the contract is broken. ``tests/testing/test_contract.py`` runs every check
against every registered representation; third-party packages can do the same with
:func:`run_contract`.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..core.representations import FeaturizationError, Representation
from ..core.structures import to_pymatgen
from .structures import bad_inputs, contract_structures

__all__ = ('CONTRACT_CHECKS', 'run_contract')

ContractCheck = Callable[[Representation, Sequence[Any] | None], None]

RTOL = 1e-8
ATOL = 1e-10


def _assert_same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=what)


def _structures(structures: Sequence[Any] | None) -> list[Any]:
    return list(structures) if structures is not None else contract_structures()


def _fitted(check: ContractCheck) -> ContractCheck:
    """Run ``check`` on the representation fitted to the structures (options taken "from the batch")."""

    @functools.wraps(check)
    def wrapper(rep: Representation, structures: Sequence[Any] | None = None) -> None:
        check(rep.fit(_structures(structures)), structures)

    return wrapper


def _rotation(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@_fitted
def check_labels_and_shape(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """``features`` is ``(N, n_features)``, labels are unique strings matching ``n_features``."""
    structures = _structures(structures)
    result = rep.featurize_many(structures)
    labels = rep.feature_labels()
    assert result.features.shape == (len(structures), rep.n_features), result.features.shape
    assert result.labels == labels
    assert len(labels) == rep.n_features > 0
    assert all(isinstance(label, str) for label in labels)
    assert len(set(labels)) == len(labels), 'feature labels are not unique'
    assert not result.failures, result.failures
    single = rep.featurize(structures[0])
    assert single.shape == (rep.n_features,)
    _assert_same(single, result.features[0], 'featurize() differs from featurize_many()[0]')


@_fitted
def check_params_roundtrip(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """``get_params`` is JSON-safe and ``from_params`` rebuilds an equal representation."""
    params = rep.get_params()
    assert json.loads(json.dumps(params)) == params, 'get_params() is not JSON round-trippable'
    rebuilt = type(rep).from_params(params)
    assert rebuilt.get_params() == params
    assert rebuilt == rep
    assert rebuilt.feature_labels() == rep.feature_labels()
    assert isinstance(rep.version, int) and rep.version >= 1
    assert rep.name and rep.input_kind in ('composition', 'structure')
    assert all(isinstance(c, str) and c.lstrip().startswith('@') for c in rep.citations()), 'citations not BibTeX'


@_fitted
def check_determinism(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """Featurising twice gives identical numbers."""
    structures = _structures(structures)
    first = rep.featurize_many(structures).features
    second = rep.featurize_many(structures).features
    np.testing.assert_array_equal(first, second)


@_fitted
def check_input_not_modified(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """Featurising leaves the input structures unchanged."""
    structures = _structures(structures)
    before = [copy.deepcopy(s) for s in structures]
    rep.featurize_many(structures)
    for original, after in zip(before, structures, strict=True):
        assert original == after, 'the representation modified its input'
        np.testing.assert_array_equal(original.frac_coords, after.frac_coords)
        np.testing.assert_array_equal(original.lattice.matrix, after.lattice.matrix)


@_fitted
def check_rotation_invariance(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """Rotating the whole crystal (lattice and atoms) does not change the features."""
    from pymatgen.core import Lattice, Structure

    structures = [to_pymatgen(s) for s in _structures(structures)]
    rotated = [
        Structure(Lattice(s.lattice.matrix @ _rotation(i).T), s.species_and_occu, s.frac_coords)
        for i, s in enumerate(structures)
    ]
    _assert_same(rep.featurize_many(rotated).features, rep.featurize_many(structures).features, 'rotation')


@_fitted
def check_translation_invariance(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """Shifting every atom by the same vector does not change the features."""
    from pymatgen.core import Structure

    structures = [to_pymatgen(s) for s in _structures(structures)]
    rng = np.random.default_rng(7)
    shifted = [Structure(s.lattice, s.species_and_occu, s.frac_coords + rng.uniform(-1, 1, size=3)) for s in structures]
    _assert_same(rep.featurize_many(shifted).features, rep.featurize_many(structures).features, 'translation')


@_fitted
def check_permutation_invariance(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """Reordering the sites does not change the features."""
    from pymatgen.core import Structure

    structures = [to_pymatgen(s) for s in _structures(structures)]
    rng = np.random.default_rng(11)
    permuted = []
    for s in structures:
        order = rng.permutation(len(s))
        permuted.append(Structure(s.lattice, [s.species_and_occu[i] for i in order], s.frac_coords[order]))
    _assert_same(rep.featurize_many(permuted).features, rep.featurize_many(structures).features, 'permutation')


@_fitted
def check_supercell(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """Intensive representations give the same features for a supercell (diagonal and sheared)."""
    if not rep.intensive:
        return
    structures = [to_pymatgen(s) for s in _structures(structures)]
    diagonal = [s.make_supercell([2, 1, 2], in_place=False) for s in structures]
    sheared = [s.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 2]], in_place=False) for s in structures]
    reference = rep.featurize_many(structures).features
    _assert_same(rep.featurize_many(diagonal).features, reference, 'supercell 2x1x2')
    _assert_same(rep.featurize_many(sheared).features, reference, 'sheared supercell')


@_fitted
def check_ase_input(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """An ASE ``Atoms`` gives the same features as the pymatgen ``Structure`` it came from."""
    from pymatgen.io.ase import AseAtomsAdaptor

    structures = [to_pymatgen(s) for s in _structures(structures)]
    atoms = [AseAtomsAdaptor.get_atoms(s) for s in structures]
    _assert_same(rep.featurize_many(atoms).features, rep.featurize_many(structures).features, 'ASE input')


@_fitted
def check_parallel_equals_serial(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """``n_jobs=2`` gives exactly the result of ``n_jobs=1`` (rows, failures and order)."""
    structures = _structures(structures)
    batch = (structures * (-(-32 // len(structures))))[:32] + [bad_inputs()[0].structure]
    serial = rep.featurize_many(batch, n_jobs=1, errors='record')
    parallel = rep.featurize_many(batch, n_jobs=2, errors='record')
    np.testing.assert_array_equal(serial.features, parallel.features)
    assert serial.failures == parallel.failures
    assert [f.index for f in serial.failures] == [len(batch) - 1]


@_fitted
def check_bad_input(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """Bad inputs raise a clear error with ``errors='raise'``; with ``'record'`` good rows are kept."""
    good = _structures(structures)[:2]
    reference = rep.featurize_many(good).features
    for bad in bad_inputs():
        try:
            rep.featurize_many([good[0], bad.structure])
        except FeaturizationError as exception:
            message = str(exception)
            assert bad.message.lower() in message.lower(), f'{bad.label}: unclear message {message!r}'
            assert message.startswith('structure 1:'), f'{bad.label}: message does not name the row: {message!r}'
        else:
            raise AssertionError(f'{rep.name} accepted bad input: {bad.label}')
        result = rep.featurize_many([good[0], bad.structure, good[1]], errors='record')
        assert [f.index for f in result.failures] == [1], f'{bad.label}: {result.failures}'
        assert np.isnan(result.features[1]).all()
        _assert_same(result.features[[0, 2]], reference, f'{bad.label}: good rows changed')


CONTRACT_CHECKS: dict[str, ContractCheck] = {
    'labels_and_shape': check_labels_and_shape,
    'params_roundtrip': check_params_roundtrip,
    'determinism': check_determinism,
    'input_not_modified': check_input_not_modified,
    'rotation': check_rotation_invariance,
    'translation': check_translation_invariance,
    'permutation': check_permutation_invariance,
    'supercell': check_supercell,
    'ase_input': check_ase_input,
    'parallel_equals_serial': check_parallel_equals_serial,
    'bad_input': check_bad_input,
}
"""Every check of the contract, by name."""


def run_contract(rep: Representation, structures: Sequence[Any] | None = None) -> None:
    """Run every contract check on ``rep``; raise ``AssertionError`` at the first broken one."""
    for name, check in CONTRACT_CHECKS.items():
        try:
            check(rep, structures)
        except AssertionError as exception:
            raise AssertionError(f'{rep.name}: contract check {name!r} failed: {exception}') from exception

"""DFT processes as sources of structures and labels: edge cases.

The processes here are small calcfunctions that output what DFT plugins output (``output_structure``,
``output_parameters``, VASP's ``misc``), so that every edge case (failed process, missing link, a label some
outputs lack, Hartree units) is cheap to make; the real pw.x path is tested in tests/workflows/test_screen.py.
"""

import math

import numpy as np
import pytest
from aiida import orm
from aiida.engine import calcfunction
from pymatgen.core import Lattice, Structure

from aiida_matembed.calculations.property import predict_property, train_property_model
from aiida_matembed.dft.processes import dft_labels, group_members, read_dft_records


@calcfunction
def relax_like(structure: orm.StructureData, parameters: orm.Dict) -> dict:
    """Output a scaled copy of the structure and the given output parameters (a stand-in for a DFT relax)."""
    scale = parameters.get_dict().pop('scale', 1.0)
    pymatgen = structure.get_pymatgen_structure()
    pymatgen.scale_lattice(pymatgen.volume * scale**3)
    values = {k: v for k, v in parameters.get_dict().items() if k != 'scale'}
    return {'output_structure': orm.StructureData(pymatgen=pymatgen), 'output_parameters': orm.Dict(values)}


@calcfunction
def scf_like(structure: orm.StructureData, parameters: orm.Dict) -> dict:
    """Output only parameters, like an scf-only run."""
    return {'output_parameters': orm.Dict(parameters.get_dict())}


@calcfunction
def vasp_like(structure: orm.StructureData, energy: orm.Float) -> dict:
    """Output the structure as ``structure`` and VASP's ``misc`` energies."""
    return {
        'structure': structure.clone(),
        'misc': orm.Dict({'total_energies': {'energy_extrapolated': energy.value}, 'total_magnetization': 1.5}),
    }


@calcfunction
def crashes(structure: orm.StructureData) -> dict:
    """Raise, leaving an excepted process."""
    raise RuntimeError('SCF did not converge')


def _rocksalt(a: str, b: str, lattice: float) -> orm.StructureData:
    structure = Structure.from_spacegroup('Fm-3m', Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return orm.StructureData(pymatgen=structure.get_primitive_structure()).store()


def _compounds():
    return [('Na', 'Cl', 5.64), ('K', 'Cl', 6.29), ('Mg', 'O', 4.21), ('Li', 'F', 4.03), ('Ca', 'O', 4.81)]


def test_group_members_resolves_structures_processes_and_explains_the_rest(aiida_profile_clean):
    plain = _rocksalt('Na', 'Cl', 5.64)
    _, relax = relax_like.run_get_node(structure=_rocksalt('K', 'Cl', 6.3), parameters=orm.Dict({'energy': -3.0}))
    _, scf = scf_like.run_get_node(structure=_rocksalt('Mg', 'O', 4.2), parameters=orm.Dict({'energy': -2.0}))
    _, vasp = vasp_like.run_get_node(structure=_rocksalt('Li', 'F', 4.0), energy=orm.Float(-4.0))
    with pytest.raises(RuntimeError):
        crashes.run_get_node(structure=_rocksalt('Ca', 'O', 4.8))
    failed = orm.QueryBuilder().append(orm.CalcFunctionNode, filters={'attributes.process_label': 'crashes'}).one()[0]
    group = orm.Group('mixed').store()
    group.add_nodes([plain, relax, scf, vasp, failed, orm.Int(3).store()])

    members = group_members(group)
    assert relax.outputs.output_structure.pk in members.structure_pks  # the relaxed structure, not the input
    assert scf.inputs.structure.pk in members.structure_pks  # scf-only: the input structure
    assert plain.pk in members.structure_pks
    reasons = dict(members.skipped)
    assert 'did not finish ok' in reasons[failed.pk] and 'excepted' in reasons[failed.pk]
    assert "no output 'output_structure'" in reasons[vasp.pk] and "['structure']" in reasons[vasp.pk]
    assert len(members.structure_pks) == 3

    _, again = scf_like.run_get_node(structure=scf.inputs.structure, parameters=orm.Dict({'energy': -2.1}))
    twice = group_members(pks=[scf.pk, again.pk])
    assert twice.structure_pks == [scf.inputs.structure.pk]
    assert twice.skipped == [(again.pk, f'stands for the same structure as process {scf.pk}: left out')]

    other = group_members(pks=[vasp.pk], structure_link='structure')
    assert other.structure_pks == [vasp.outputs.structure.pk]


def test_labels_from_the_outputs_plugins_use():
    structure = orm.StructureData(pymatgen=Structure(Lattice.cubic(3), ['Si', 'Si'], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    qe = dft_labels({'output_parameters': orm.Dict({'energy': -10.0, 'total_magnetization': 0.0})}, structure)
    assert qe['energy'] == -10.0 and qe['energy_per_atom'] == -5.0 and qe['total_magnetization'] == 0.0
    assert math.isnan(qe['pressure']) and math.isnan(qe['band_gap'])
    cp2k = dft_labels({'output_parameters': orm.Dict({'energy': -1.0, 'energy_units': 'a.u.'})}, structure)
    assert cp2k['energy'] == pytest.approx(-27.211386245988)  # CODATA 2018 Hartree
    vasp = dft_labels({'misc': orm.Dict({'total_energies': {'energy_extrapolated': -7.0}})}, structure)
    assert vasp['energy'] == -7.0
    gap = dft_labels(
        {'output_parameters': orm.Dict({'highest_occupied_level': 5.0, 'lowest_unoccupied_level': 6.25})}, structure
    )
    assert gap['band_gap'] == 1.25
    bands = orm.BandsData()
    bands.set_kpoints(np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]))
    bands.set_bands(np.array([[-5.0, 1.0, 2.5, 4.0], [-4.0, 1.5, 2.0, 5.0]]))  # eV
    insulator = {'output_band': bands, 'output_parameters': orm.Dict({'number_of_electrons': 4.0})}
    assert dft_labels(insulator, structure)['band_gap'] == 0.5  # min of band 3 (2.0) - max of band 2 (1.5)
    odd = {'output_band': bands, 'output_parameters': orm.Dict({'number_of_electrons': 5.0})}
    assert dft_labels(odd, structure)['band_gap'] == 0.0  # odd electron count, no spin: a metal
    full = {'output_band': bands, 'output_parameters': orm.Dict({'number_of_electrons': 8.0})}
    assert math.isnan(dft_labels(full, structure)['band_gap'])  # no empty band computed
    trajectory = orm.ArrayData()
    trajectory.set_array('stress', np.array([np.eye(3) * 9.0, np.diag([1.0, 2.0, 3.0])]))
    assert dft_labels({'output_trajectory': trajectory}, structure)['pressure'] == 2.0  # trace / 3 of the last


def test_no_finished_dft_process_is_a_clear_error(aiida_profile_clean):
    with pytest.raises(RuntimeError):
        crashes.run_get_node(structure=_rocksalt('Na', 'Cl', 5.6))
    group = orm.Group('nothing-finished').store()
    group.add_nodes(orm.QueryBuilder().append(orm.CalcFunctionNode).all(flat=True))
    with pytest.raises(ValueError, match=r'holds no finished DFT process: crashes<\d+> did not finish ok'):
        read_dft_records(group)
    with pytest.raises(ValueError, match='holds no finished DFT process'):
        train_property_model(group, 'energy_per_atom', representation='matembed.magpie')


def test_rows_without_the_target_are_skipped_and_reported_and_other_representations_refused(aiida_profile_clean):
    group = orm.Group('relaxed').store()
    energies = [-3.2, -3.4, -5.0, -4.6, None]
    for (a, b, lattice), energy in zip(_compounds(), energies, strict=True):
        values = {'scale': 1.01} if energy is None else {'energy': 2 * energy, 'scale': 1.01}
        _, node = relax_like.run_get_node(structure=_rocksalt(a, b, lattice), parameters=orm.Dict(values))
        group.add_nodes(node)
    result = train_property_model(group, 'energy_per_atom', representation='matembed.magpie', folds=2)
    assert result.metrics['n_train'] == 4
    assert [reason for _, reason in result.skipped] == ['the DFT outputs hold no energy_per_atom']
    assert sorted(result.metrics['targets']) == sorted(e for e in energies if e is not None)
    model = result.model
    # the model's creator names the DFT outputs and the vectors it learned from
    inputs = {link.link_label: link.node for link in result.process.base.links.get_incoming().all()}
    assert sum(label.startswith('dft__') and label.endswith('output_parameters') for label in inputs) == 5
    features = [node for label, node in inputs.items() if label.startswith('features__')]
    assert {f.representation for f in features} == {'matembed.magpie'}
    assert model.creator.pk == result.process.pk
    assert model.base.attributes.get('metrics')['baseline_mae'] > 0

    candidates = orm.Group('candidates').store()
    candidates.add_nodes([_rocksalt('Na', 'F', 4.6), _rocksalt('K', 'Br', 6.6)])
    prediction = predict_property(candidates, model)
    values = prediction.by_pk()
    assert len(values) == 2 and all(np.isfinite(m) and s >= 0 for m, s in values.values())
    assert prediction.process.inputs.model.pk == model.pk

    from aiida_matembed.calculations.featurize import featurize_structures
    from aiida_matembed.calculations.property import predict

    other, _ = featurize_structures(list(candidates.nodes), 'matembed.element_fraction')
    with pytest.raises(ValueError, match='was trained on matembed.magpie .* not on matembed.element_fraction'):
        predict.run_get_node(model=model, structures={'s0': next(iter(candidates.nodes))}, features={'f0': other})


def test_dataset_import_joins_vectors_with_dft_labels(aiida_profile_clean, tmp_path):
    from click.testing import CliRunner

    from aiida_matembed.cli import cmd_matembed
    from aiida_matembed.core.datasets import StructureSet
    from aiida_matembed.query import get_features

    group = orm.Group('dft').store()
    for (a, b, lattice), energy in zip(_compounds()[:3], (-3.0, -3.5, -5.0), strict=True):
        _, node = relax_like.run_get_node(
            structure=_rocksalt(a, b, lattice), parameters=orm.Dict({'energy': 2 * energy, 'scale': 1.02})
        )
        group.add_nodes(node)
    output = tmp_path / 'dft.npz'
    result = CliRunner().invoke(
        cmd_matembed, ['dataset', 'import', '--group', 'dft', '-r', 'matembed.magpie', str(output)]
    )
    assert result.exit_code == 0, result.output
    loaded = StructureSet.load(output)
    assert list(loaded.labels['energy_per_atom']) == [-3.0, -3.5, -5.0]
    for row, pk in enumerate(loaded.labels['pk']):
        node = orm.load_node(int(pk))
        assert node.creator.process_label == 'relax_like'  # the relaxed structure, not the input
        vector = get_features(node, 'matembed.magpie')
        assert loaded.labels['matembed.magpie:MagpieData mean Number'][row] == vector[3]
    result = CliRunner().invoke(cmd_matembed, ['dataset', 'import', '--group', 'dft', str(output)])
    assert result.exit_code != 0 and 'exists' in result.output

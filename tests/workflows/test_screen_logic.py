"""The screening loop's bookkeeping over several rounds, with a stand-in DFT WorkChain.

Real pw.x runs are in test_screen.py; here a small WorkChain (registered as a DFT workflow entry point for the
test) outputs what a relaxation outputs, so that several rounds, re-screens and labels that some outputs lack
can be checked in seconds. The stand-in's "energy" is a smooth function of the composition.
"""

import numpy as np
import pytest
from aiida import orm
from aiida.engine import WorkChain, calcfunction
from pymatgen.core import Lattice, Structure

from aiida_matembed.workflows.screen import launch_screen


@calcfunction
def stand_in_relax(structure: orm.StructureData, parameters: orm.Dict) -> dict:
    """A 1 % larger cell, its 'energy' (mean Z of the sites, eV per atom) and a band gap unless told not to."""
    pymatgen = structure.get_pymatgen_structure()
    pymatgen.scale_lattice(pymatgen.volume * 1.03)
    numbers = [site.specie.Z for site in pymatgen]
    values = {'energy': -float(np.mean(numbers)) * len(numbers), 'energy_units': 'eV'}
    if not parameters.get_dict().get('no_gap'):
        values['band_gap'] = float(np.std(numbers))
    return {'output_structure': orm.StructureData(pymatgen=pymatgen), 'output_parameters': orm.Dict(values)}


class StandInRelax(WorkChain):
    """Outputs ``output_structure`` and ``output_parameters`` like a DFT relaxation."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input('structure', valid_type=orm.StructureData)
        spec.input('parameters', valid_type=orm.Dict)
        spec.outline(cls.relax)
        spec.output('output_structure', valid_type=orm.StructureData)
        spec.output('output_parameters', valid_type=orm.Dict)

    @classmethod
    def get_builder_from_protocol(cls, code, structure, protocol=None, overrides=None, options=None):
        builder = cls.get_builder()
        builder.structure = structure
        builder.parameters = orm.Dict(overrides or {})
        return builder

    def relax(self):
        outputs = stand_in_relax(self.inputs.structure, self.inputs.parameters)
        self.out('output_structure', outputs['output_structure'])
        self.out('output_parameters', outputs['output_parameters'])


def _rocksalt(a, b, lattice):
    structure = Structure.from_spacegroup('Fm-3m', Lattice.cubic(lattice), [a, b], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return orm.StructureData(pymatgen=structure.get_primitive_structure()).store()


PAIRS = [('Li', 'F', 4.0), ('Na', 'Cl', 5.6), ('K', 'Br', 6.6), ('Rb', 'I', 7.3), ('Mg', 'O', 4.2), ('Ca', 'S', 5.7),
         ('Sr', 'Se', 6.2), ('Ba', 'Te', 7.0)]  # fmt: skip


@pytest.fixture
def stand_in(entry_points, aiida_profile_clean, aiida_localhost):
    entry_points.add(StandInRelax, 'aiida.workflows:testing.stand_in_relax')
    code = orm.InstalledCode(computer=aiida_localhost, filepath_executable='/bin/true', label='true').store()
    candidates = orm.Group('candidates').store()
    candidates.add_nodes([_rocksalt(*pair) for pair in PAIRS])
    return code, candidates


def _overrides(**extra):
    return {'dft_workflow': 'testing.stand_in_relax', 'folds': 2, **extra}


def test_rounds_never_select_a_candidate_twice_and_a_rescreen_runs_no_dft_again(stand_in):
    code, candidates = stand_in
    summary, node = launch_screen(
        candidates, code, protocol='fast', overrides=_overrides(k=2, rounds=3, selection='diversity')
    )
    assert node.is_finished_ok, node.exit_message
    rounds = summary['rounds']
    selected = [pk for r in rounds for pk in r['selected']]
    assert len(selected) == 6 and len(set(selected)) == 6
    # from round 2 the labelled structures seed the farthest-point selection: the picks are spread out
    assert all('labels' in r and len(r['labels']) == 2 for r in rounds)
    assert 'prediction_mae' not in rounds[0] and 'prediction_mae' in rounds[1]  # a model exists after round 1
    assert rounds[2]['n_train'] == 6

    again, node = launch_screen(candidates, code, protocol='fast', overrides=_overrides(k=2, rounds=3))
    assert node.is_finished_ok
    second = [pk for r in again['rounds'] for pk in r['selected']]
    assert sorted(second) == sorted(set(candidates_pks(candidates)) - set(selected))  # only the two left
    assert again['rounds'][0]['n_train'] == 8


def candidates_pks(group):
    return [n.pk for n in group.nodes]


def test_diversity_is_seeded_by_the_labelled_candidates(stand_in):
    from aiida_matembed.workflows.screen import farthest_point_selection

    code, candidates = stand_in
    overrides = _overrides(k=2, rounds=2, selection='diversity')
    summary, _ = launch_screen(candidates, code, protocol='fast', overrides=overrides)
    first, second = (r['selected'] for r in summary['rounds'])
    from aiida_matembed.query import get_features

    vectors = {n.pk: get_features(n, 'matembed.magpie') for n in candidates.nodes}
    rest = [pk for pk in vectors if pk not in first]
    expected = farthest_point_selection(
        np.stack([vectors[pk] for pk in rest]), 2, chosen=np.stack([vectors[pk] for pk in first])
    )
    assert second == [rest[i] for i in expected]


def test_a_target_some_outputs_lack_is_reported_not_a_crash(stand_in):
    code, candidates = stand_in
    summary, node = launch_screen(
        candidates,
        code,
        protocol='fast',
        overrides=_overrides(k=2, rounds=1, target='band_gap', dft_overrides={'no_gap': True}),
    )
    assert node.exit_status == 301  # ERROR_NO_MODEL, with the reason, not an excepted process
    assert 'band_gap' in node.exit_message
    labels = summary['rounds'][0]['labels']
    assert len(labels) == 2 and all(label['dft'] is None for label in labels)
    assert 'have both a band_gap label' in summary['rounds'][0]['no_model']


def test_bad_inputs_are_refused_before_anything_runs(stand_in):
    code, candidates = stand_in
    with pytest.raises(ValueError, match='unknown target'):
        launch_screen(candidates, code, overrides=_overrides(target='formation_energy'))
    with pytest.raises(ValueError, match='unknown protocol'):
        launch_screen(candidates, code, protocol='quick', overrides=_overrides())
    with pytest.raises(ValueError, match='unknown override'):
        launch_screen(candidates, code, overrides=_overrides(kk=2))
    with pytest.raises(ValueError, match='unknown DFT workflow entry point'):
        launch_screen(candidates, code, overrides={'dft_workflow': 'nope.relax'})
    empty = orm.Group('empty').store()
    summary, node = launch_screen(empty, code, protocol='fast', overrides=_overrides())
    assert node.exit_status == 300 and summary['model'] is None

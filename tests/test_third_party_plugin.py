"""A representation declared only by an entry point works everywhere a built-in one does."""

from typing import ClassVar

import numpy as np
from aiida import orm
from click.testing import CliRunner

from aiida_matembed.core.representations import Representation, get_representation, list_representations
from aiida_matembed.core.structures import to_pymatgen, validate_structure
from aiida_matembed.testing import run_contract


class DensityRepresentation(Representation):
    """Atoms per Å^3 and mass density in g/cm^3 (a stand-in for a third-party plugin)."""

    name = 'thirdparty.density'
    version = 3
    input_kind: ClassVar = 'structure'
    description = 'Number density and mass density'

    def __init__(self, *, scale: float = 1.0) -> None:
        self.scale = scale

    def feature_labels(self):
        return ['number_density', 'mass_density']

    def _prepare(self, item):
        structure = to_pymatgen(item)
        validate_structure(structure)
        return structure

    def _compute(self, prepared):
        return np.array([[len(s) / s.volume * self.scale, s.density * self.scale] for s in prepared])


def test_entry_point_plugin_featurises_stores_queries_and_lists(aiida_profile_clean, entry_points, examples):
    entry_points.add(DensityRepresentation, group='aiida_matembed.representations', name='thirdparty.density')
    from aiida_matembed.calculations import featurize_structures
    from aiida_matembed.cli import cmd_matembed
    from aiida_matembed.query import featurized_structures, get_features

    assert 'thirdparty.density' in list_representations()
    rep = get_representation('thirdparty.density', scale=2.0)
    run_contract(rep)

    nodes = [orm.StructureData(pymatgen=e.structure).store() for e in examples[:3]]
    features, process = featurize_structures(nodes, 'thirdparty.density', {'scale': 2.0})
    assert features.base.attributes.get('representation_version') == 3
    assert process.base.attributes.get('representation_version') == 3
    np.testing.assert_allclose(
        get_features(nodes[1], 'thirdparty.density', params={'scale': 2.0}),
        [2 * len(examples[1].structure) / examples[1].structure.volume, 2 * examples[1].structure.density],
    )
    assert {n.pk for n in featurized_structures('thirdparty.density')} == {n.pk for n in nodes}

    result = CliRunner().invoke(cmd_matembed, ['representations'], catch_exceptions=False)
    assert 'thirdparty.density' in result.output and 'Number density' in result.output

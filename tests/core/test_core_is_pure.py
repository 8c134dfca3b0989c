"""The core must never import aiida (DESIGN.md: pure core, thin AiiDA shell)."""

import subprocess
import sys

SCRIPT = """
import importlib, pkgutil, sys
import aiida_matembed.core as core
for module in pkgutil.walk_packages(core.__path__, 'aiida_matembed.core.'):
    importlib.import_module(module.name)
from pymatgen.core import Lattice, Structure
from aiida_matembed.core.representations import get_representation, list_representations
nacl = Structure(Lattice.cubic(5.64), ['Na', 'Cl'], [[0, 0, 0], [0.5, 0.5, 0.5]])
for name in list_representations():
    get_representation(name).featurize_many([nacl])
get_representation('matembed.crystal_graph').graphs_many([nacl])
leaked = sorted(m for m in sys.modules if m == 'aiida' or m.startswith('aiida.'))
assert not leaked, leaked
print('ok')
"""


def test_core_does_not_import_aiida():
    result = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'ok'

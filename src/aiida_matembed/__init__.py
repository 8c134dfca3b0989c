"""aiida-matembed: materials representations, powder XRD and embeddings with AiiDA provenance.

The :mod:`aiida_matembed.core` subpackage is pure Python (numpy, pymatgen, torch) and never imports
AiiDA; the other subpackages are the thin AiiDA shell around it.
"""

__version__ = '0.1.0'

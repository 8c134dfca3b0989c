"""DFT next to the models: a local Quantum ESPRESSO set-up, and finished DFT processes of any plugin as inputs.

- :mod:`.setup`: the ``pw.x`` code and pseudopotential families from Debian's UPF files (no network);
- :mod:`.processes`: the structures (output structure, or input structure of scf-only runs) and the labels
  (energy, energy per atom, pressure, magnetisation, band gap) of finished DFT processes.
"""

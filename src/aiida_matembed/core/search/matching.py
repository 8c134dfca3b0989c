"""Is this structure already in my database? Crystallographic equivalence by pymatgen's ``StructureMatcher``.

Two structures match when a lattice mapping and an atom assignment exist with the default tolerances of
``StructureMatcher`` (lattice ``ltol = 0.2``, site ``stol = 0.3`` of ``(V / N)^(1/3)``, angles ``angle_tol = 5°``;
cells are reduced to primitive ones and scaled to the same volume first, so a relaxed and an unrelaxed cell
match). Candidates are first narrowed to the same reduced formula, which the matcher would require anyway.

Reference: pymatgen ``pymatgen.analysis.structure_matcher`` (Ong et al., Comput. Mater. Sci. 68, 314 (2013)).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ..structures import to_pymatgen

__all__ = ('StructureMatch', 'matching_structures')


class StructureMatch(NamedTuple):
    """A candidate equivalent to the query."""

    position: int
    """Position of the candidate in the list given."""
    rms: float
    """Root-mean-square site displacement after the mapping, in units of ``(V / N)^(1/3)``."""
    max_displacement: float
    """Largest site displacement, same units."""


def matching_structures(
    query: Any,
    candidates: Sequence[Any],
    *,
    formulas: Sequence[str] | None = None,
    ltol: float = 0.2,
    stol: float = 0.3,
    angle_tol: float = 5.0,
    scale: bool = True,
) -> list[StructureMatch]:
    """The candidates crystallographically equivalent to ``query``, best (smallest rms) first.

    :param query: a pymatgen ``Structure`` or ASE ``Atoms``.
    :param candidates: structures (or anything :func:`~aiida_matembed.core.structures.to_pymatgen` reads), or
        callables returning one, so that only candidates of the right formula are loaded.
    :param formulas: reduced formulas of the candidates, when known without loading them.
    :param scale: compare at equal volume per atom (``StructureMatcher(scale=True)``).
    """
    from pymatgen.analysis.structure_matcher import StructureMatcher

    reference = to_pymatgen(query)
    formula = reference.composition.reduced_formula
    matcher = StructureMatcher(ltol=ltol, stol=stol, angle_tol=angle_tol, scale=scale)
    found = []
    for index, candidate in enumerate(candidates):
        if formulas is not None and formulas[index] != formula:
            continue
        structure = to_pymatgen(candidate() if callable(candidate) else candidate)
        if structure.composition.reduced_formula != formula:
            continue
        result = matcher.get_rms_dist(reference, structure)
        if result is not None:
            found.append(StructureMatch(index, float(result[0]), float(result[1])))
    return sorted(found, key=lambda m: (m.rms, m.position))

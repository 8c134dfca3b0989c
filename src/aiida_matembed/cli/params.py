"""Option parsing and node selection shared by the ``verdi data matembed`` commands (no command lives here)."""

from __future__ import annotations

import json
from typing import Any

import click
from aiida.cmdline.utils import echo

__all__ = (
    'KALPHA2_OPTION',
    'MEASURED_WAVELENGTH_OPTION',
    'check_selection',
    'formula_of',
    'group_structure_pks',
    'parse_params',
    'selected_pks',
    'wavelength_value',
)


def parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    """Parse ``key=value`` pairs; values are read as JSON when possible (numbers, lists, booleans)."""
    params: dict[str, Any] = {}
    for item in values:
        if '=' not in item:
            raise click.BadParameter(f'expected key=value, got {item!r}', param_hint='--param')
        key, _, raw = item.partition('=')
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def check_selection(structures: tuple[Any, ...], group: Any) -> None:
    """Refuse (``echo_critical``) giving both or neither of pks and ``--group``, and pks of other nodes.

    Pks may name structures or finished DFT processes (which stand for their output structure).
    """
    from aiida import orm

    if bool(structures) == (group is not None):
        echo.echo_critical('give either structure pks or --group, not both / neither')
    bad = [n.pk for n in structures if not isinstance(n, orm.StructureData | orm.ProcessNode)]
    if bad:
        echo.echo_critical(f'not StructureData or DFT processes: {bad}')


def selected_pks(structures: tuple[Any, ...]) -> list[int]:
    """Structure pks of the given nodes: structures as they are, DFT processes by their output structure."""
    from ..dft.processes import group_members

    members = group_members(pks=[n.pk for n in structures])
    for pk, reason in members.skipped:
        echo.echo_warning(f'{pk} left out: {reason}')
    return members.structure_pks


def group_structure_pks(group: Any) -> list[int]:
    """Pks of the structures of ``group`` (finished DFT processes give their output structure), increasing."""
    from ..dft.processes import group_members

    return group_members(group).structure_pks


def formula_of(node: Any) -> str:
    """Reduced formula of a ``StructureData`` (``NaCl``), or its Hill formula if that cannot be reduced."""
    from pymatgen.core import Composition

    formula = node.get_formula(mode='hill')
    try:
        return Composition(formula).reduced_formula
    except Exception:
        return formula


def wavelength_value(value: str) -> str | float:
    """``--wavelength``: a number is a wavelength in Å, anything else an anode name."""
    try:
        return float(value)
    except ValueError:
        return value


MEASURED_WAVELENGTH_OPTION = click.option(
    '-w',
    '--wavelength',
    default='CuKa',
    show_default=True,
    help='Anode of the measurement (CuKa = Ka1 + Ka2 doublet, CuKa1, MoKa, ...) or a wavelength in Å.',
)
"""``--wavelength`` of the commands that read a measured pattern (parse it with :func:`wavelength_value`)."""

KALPHA2_OPTION = click.option(
    '--kalpha2/--no-kalpha2',
    default=None,
    help='Strip a K-alpha2 doublet first (default: for an anode name ending in Ka, e.g. CuKa).',
)
"""``--kalpha2/--no-kalpha2`` of the commands that read a measured pattern."""

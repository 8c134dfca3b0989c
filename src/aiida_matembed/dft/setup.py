"""A local Quantum ESPRESSO set-up that needs no network: the ``pw.x`` code and pseudopotential families.

Debian's ``quantum-espresso-data`` package puts about 70 UPF files in ``/usr/share/espresso/pseudo`` (QE's
naming convention: ``Element.[rel-]functional-[...].UPF``). :func:`scan_pseudopotentials` reads each file's
header (element, exchange-correlation functional, pseudopotential type, suggested cutoffs) and
:func:`setup_pseudo_families` makes one ``aiida-pseudo`` :class:`CutoffsPseudoPotentialFamily` per
functional (``matembed/debian-qe/PBE``, ``.../LDA``, ``.../PBEsol``) holding one file per element, with
cutoffs for the stringencies ``low``, ``normal`` and ``high``, so that
``PwRelaxWorkChain.get_builder_from_protocol(..., overrides={'base_relax': {'pseudo_family': LABEL}, ...})``
works offline. :func:`setup_pw_code` makes an ``InstalledCode`` for ``pw.x`` on a computer. Both are
idempotent: running them again returns the existing nodes.

These are Debian's test pseudopotentials, good for trying the workflows and for tests, not a converged
production library (use SSSP or PseudoDojo for that: ``aiida-pseudo install sssp`` where there is internet).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiida import orm

__all__ = (
    'DEBIAN_PSEUDO_DIR',
    'FAMILY_PREFIX',
    'MissingPseudopotentialError',
    'PseudoFile',
    'check_family_covers',
    'family_label',
    'scan_pseudopotentials',
    'setup_dft',
    'setup_pseudo_families',
    'setup_pw_code',
)

DEBIAN_PSEUDO_DIR = Path('/usr/share/espresso/pseudo')
"""Where Debian's ``quantum-espresso-data`` installs its UPF files."""

FAMILY_PREFIX = 'matembed/debian-qe'
"""Families are labelled ``FAMILY_PREFIX/FUNCTIONAL``."""

DEFAULT_FUNCTIONAL = 'PBE'

# Wave-function cutoff (Ry) and ratio rho/wfc used when a file suggests none (or 0): common practice for
# norm-conserving (ratio 4) and ultrasoft / PAW (ratio 8) potentials.
_DEFAULT_CUTOFFS = {'NC': (30.0, 4.0), 'US': (35.0, 8.0), 'PAW': (40.0, 8.0)}
_STRINGENCY_SCALE = {'low': 0.75, 'normal': 1.0, 'high': 1.25}
_TYPE_PREFERENCE = {'NC': 0, 'US': 1, 'PAW': 2}
_FUNCTIONALS = {'pbe': 'PBE', 'pz': 'LDA', 'pbesol': 'PBEsol'}
_EXCLUDED_TAGS = ('gipaw', 'coulomb', 'aewfc')
_PW_ROOT_ENV = 'export OMPI_ALLOW_RUN_AS_ROOT=1\nexport OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1\nexport OMP_NUM_THREADS=1'


class MissingPseudopotentialError(ValueError):
    """A structure has an element for which a pseudopotential family has no file."""


@dataclass(frozen=True)
class PseudoFile:
    """One UPF file as read from its header.

    :param path: the file.
    :param element: chemical symbol.
    :param functional: ``'PBE'``, ``'LDA'`` or ``'PBEsol'``.
    :param pseudo_type: ``'NC'`` (norm-conserving), ``'US'`` (ultrasoft) or ``'PAW'``.
    :param wfc_cutoff: suggested wave-function cutoff (Ry), 0 if none.
    :param rho_cutoff: suggested charge-density cutoff (Ry), 0 if none.
    """

    path: Path
    element: str
    functional: str
    pseudo_type: str
    wfc_cutoff: float
    rho_cutoff: float

    def cutoffs(self, stringency: str = 'normal') -> tuple[float, float]:
        """``(ecutwfc, ecutrho)`` in Ry: the suggested values or the type's defaults, whichever is larger."""
        default_wfc, ratio = _DEFAULT_CUTOFFS[self.pseudo_type]
        wfc = max(self.wfc_cutoff, default_wfc)
        rho = max(self.rho_cutoff, wfc * ratio)
        scale = _STRINGENCY_SCALE[stringency]
        return round(wfc * scale, 1), round(rho * scale, 1)


def _read_header(path: Path) -> PseudoFile | None:
    """Read a UPF file's element, functional, type and suggested cutoffs; ``None`` when it is not usable."""
    match = re.match(r'^([A-Z][a-z]?)\.([a-z]+)-', path.name)
    if not match or path.suffix.lower() != '.upf':
        return None
    element, functional_tag = match.groups()
    name = path.name.lower()
    if functional_tag not in _FUNCTIONALS or any(tag in name for tag in _EXCLUDED_TAGS):
        return None  # fully relativistic ('rel-'), BLYP / TPSS, all-electron and GIPAW files are left out
    text = path.read_text(errors='replace')[:40000]
    header = re.search(r'element\s*=\s*"\s*(\w+)\s*"', text, re.I) or re.search(r'\n\s*(\w{1,2})\s+Element', text)
    if header is None or header.group(1) != element or 'relativistic="full"' in text:
        return None
    kind = re.search(r'pseudo_type\s*=\s*"(\w+)"', text, re.I) or re.search(r'Pseudopotential type:\s*(\w+)', text)
    raw = kind.group(1).upper() if kind else ''
    pseudo_type = {'NC': 'NC', 'SL': 'NC', 'US': 'US', 'USPP': 'US', 'PAW': 'PAW'}.get(raw)
    if pseudo_type is None:  # no header field: QE's file-name tags, then the sections present
        if 'paw' in name or 'PP_PAW' in text:
            pseudo_type = 'PAW'
        elif any(tag in name for tag in ('rrkjus', 'van', 'uspp')) or 'PP_AUGMENTATION' in text or 'PP_QIJ' in text:
            pseudo_type = 'US'
        else:
            pseudo_type = 'NC'
    wfc = re.search(r'Suggested minimum cutoff for wavefunctions:\s*([\d.]+)', text)
    rho = re.search(r'Suggested minimum cutoff for charge density:\s*([\d.]+)', text)
    return PseudoFile(
        path,
        element,
        _FUNCTIONALS[functional_tag],
        pseudo_type,
        float(wfc.group(1).rstrip('.')) if wfc else 0.0,
        float(rho.group(1).rstrip('.')) if rho else 0.0,
    )


def scan_pseudopotentials(directory: str | Path = DEBIAN_PSEUDO_DIR) -> dict[str, dict[str, PseudoFile]]:
    """Functional -> element -> the preferred UPF file of ``directory``.

    Per element and functional the cheapest usable file wins: norm-conserving before ultrasoft before PAW,
    then the lowest suggested cutoff, then the newest pslibrary version (by name).

    :raises FileNotFoundError: when the folder does not exist (with the command that installs it).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"no pseudopotential folder {directory}: install Debian's files with "
            '`apt-get install -y quantum-espresso-data` (scripts/setup_env.sh does it)'
        )
    found: dict[str, dict[str, list[PseudoFile]]] = {}
    for path in sorted(directory.iterdir()):
        if not path.is_file():
            continue
        pseudo = _read_header(path)
        if pseudo is not None:
            found.setdefault(pseudo.functional, {}).setdefault(pseudo.element, []).append(pseudo)
    return {
        functional: {
            element: min(
                files,
                key=lambda p: (_TYPE_PREFERENCE[p.pseudo_type], p.cutoffs()[0], [-ord(c) for c in p.path.name]),
            )
            for element, files in sorted(elements.items())
        }
        for functional, elements in sorted(found.items())
    }


def family_label(functional: str = DEFAULT_FUNCTIONAL) -> str:
    """Label of the family of ``functional`` (``'PBE'``, ``'LDA'``, ``'PBEsol'``)."""
    return f'{FAMILY_PREFIX}/{functional}'


def _cutoffs_family_class() -> Any:
    from aiida.plugins import GroupFactory

    return GroupFactory('pseudo.family.cutoffs')


def setup_pseudo_families(
    directory: str | Path = DEBIAN_PSEUDO_DIR, functionals: Iterable[str] | None = None
) -> dict[str, Any]:
    """Create (once) one cutoffs family per functional from the UPF files of ``directory``.

    :returns: functional -> the family (existing families are returned as they are).
    """
    from aiida_pseudo.data.pseudo import UpfData

    family_class = _cutoffs_family_class()
    scanned = scan_pseudopotentials(directory)
    wanted = list(functionals) if functionals is not None else list(scanned)
    unknown = [f for f in wanted if f not in scanned]
    if unknown:
        raise ValueError(f'no UPF files for functional(s) {unknown} in {directory}; found: {sorted(scanned)}')
    families = {}
    for functional in wanted:
        label = family_label(functional)
        existing = orm.QueryBuilder().append(family_class, filters={'label': label}).first(flat=True)
        if existing is not None:
            families[functional] = existing
            continue
        files = scanned[functional]
        with tempfile.TemporaryDirectory() as tmp:  # a flat folder, one file per element, named after it
            for element, pseudo in files.items():
                shutil.copyfile(pseudo.path, Path(tmp) / f'{element}.upf')
            family = family_class.create_from_folder(Path(tmp), label, pseudo_type=UpfData)
        family.description = (
            f"{functional} pseudopotentials of Debian's quantum-espresso-data ({directory}), one per element: "
            + ', '.join(f'{e}: {p.path.name}' for e, p in files.items())
        )
        for stringency in _STRINGENCY_SCALE:
            cutoffs = {e: dict(zip(('cutoff_wfc', 'cutoff_rho'), p.cutoffs(stringency), strict=True))
                       for e, p in files.items()}  # fmt: skip
            family.set_cutoffs(cutoffs, stringency, unit='Ry')
        family.set_default_stringency('normal')
        families[functional] = family
    return families


def check_family_covers(family: Any, elements: Iterable[str]) -> None:
    """Refuse elements the family has no pseudopotential for, naming them and the family.

    :raises MissingPseudopotentialError: listing the missing elements and the family's label.
    """
    available = set(family.elements)
    missing = sorted(set(elements) - available)
    if missing:
        raise MissingPseudopotentialError(
            f'pseudopotential family {family.label!r} has no file for element(s) {", ".join(missing)} '
            f'(it covers {", ".join(sorted(available))}); give a family that does (--pseudo-family), '
            'e.g. one installed with `aiida-pseudo install family FOLDER LABEL -P pseudo.upf`'
        )


def _pw_executable() -> Path:
    found = shutil.which('pw.x')
    if found is None:
        raise FileNotFoundError(
            'pw.x is not installed: `apt-get install -y quantum-espresso quantum-espresso-data` '
            '(scripts/setup_env.sh does it)'
        )
    return Path(os.path.realpath(found))


def setup_pw_code(computer: str | orm.Computer = 'localhost', label: str = 'pw') -> orm.InstalledCode:
    """Create (once) the ``quantumespresso.pw`` code ``LABEL@COMPUTER`` for the ``pw.x`` on this machine.

    The code runs through ``mpirun`` (the protocols ask for ``withmpi``); the prepend text allows OpenMPI to run
    as root, as containers do, and pins OpenMP to one thread.
    """
    computer_node = orm.load_computer(computer) if isinstance(computer, str) else computer
    query = orm.QueryBuilder().append(orm.Computer, filters={'id': computer_node.pk}, tag='computer')
    query.append(orm.InstalledCode, with_computer='computer', filters={'label': label})
    existing = query.first(flat=True)
    if existing is not None:
        return existing
    code = orm.InstalledCode(
        computer=computer_node,
        filepath_executable=str(_pw_executable()),
        label=label,
        description="Quantum ESPRESSO pw.x (Debian's quantum-espresso package)",
        default_calc_job_plugin='quantumespresso.pw',
        prepend_text=_PW_ROOT_ENV,
        with_mpi=True,
    )
    return code.store()


def setup_dft(
    computer: str | orm.Computer = 'localhost',
    *,
    code_label: str = 'pw',
    directory: str | Path = DEBIAN_PSEUDO_DIR,
) -> dict[str, Any]:
    """:func:`setup_pw_code` and :func:`setup_pseudo_families` in one call (idempotent).

    :returns: ``{'code': InstalledCode, 'families': {functional: family}}``.
    """
    return {'code': setup_pw_code(computer, code_label), 'families': setup_pseudo_families(directory)}


def family_elements(families: Mapping[str, Any]) -> dict[str, list[str]]:
    """Label -> sorted elements of each family (for reports)."""
    return {family.label: sorted(family.elements) for family in families.values()}

"""Read structure files of any common format, one item at a time, and say why each bad one is refused.

This is the pure part of ``verdi data matembed import`` and of ``dataset import``: it never stops at a bad file.
:func:`collect_files` expands files, folders (recursively) and glob patterns; :func:`read_file` yields, for every
structure in a file, either an :class:`ImportItem` (a pymatgen ``Structure`` and what the file says about it) or
an :class:`ImportFailure` whose ``reason`` is one line. Formats:

* ``cif``: every data block with atoms (pymatgen ``CifParser``, cell as written, not reduced); partially
  occupied sites are kept (marked ``partial_occupancy``); occupancies below 0 or above 1 are refused;
* ``poscar``: VASP POSCAR / CONTCAR (``*.vasp``, ``*.poscar``, names starting with ``POSCAR`` / ``CONTCAR``);
* ``extxyz``: every frame (``ase.io.read(index=':')``); frames without a cell are molecules and refused; a
  slab periodic in two directions is kept with its boundary conditions when its cell has a volume;
* ``ase-db``: every row of an ASE database (``.db``);
* ``json``: pymatgen ``Structure.as_dict()`` JSON (``.json`` / ``.json.gz``): one dict, a list, a dict name ->
  structure or a list of ``{'structure': ...}`` records.

Checks of :func:`check_structure` (all lengths in Å): at least one and at most :data:`MAX_SITES` sites; a finite
lattice with positive volume and no vector longer than :data:`~aiida_matembed.core.structures.MAX_LATTICE_LENGTH`;
finite coordinates; chemical elements with Z <= :data:`MAX_IMPORT_Z` (no dummy species); site occupancies in
[0, 1]; no two fully occupied sites (periodic images included) closer than
:data:`~aiida_matembed.core.structures.MIN_INTERATOMIC_DISTANCE`. Large inputs are refused by counting, before
anything is computed on them.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import json
import math
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..structures import MAX_LATTICE_LENGTH, MAX_SITES, MIN_CELL_VOLUME, MIN_INTERATOMIC_DISTANCE, closest_pair

if TYPE_CHECKING:
    from pymatgen.core import Structure

__all__ = (
    'FORMATS',
    'MAX_FILE_BYTES',
    'MAX_IMPORT_Z',
    'MAX_SITES',
    'ImportFailure',
    'ImportItem',
    'check_structure',
    'collect_files',
    'describe_structure',
    'detect_format',
    'file_sha256',
    'read_file',
)

FORMATS = ('auto', 'cif', 'poscar', 'extxyz', 'ase-db', 'json')
"""Values of ``fmt``: ``auto`` chooses by file name (then by content for unknown extensions)."""

MAX_IMPORT_Z = 103
"""Heaviest element accepted (lawrencium); heavier ones have no known crystal chemistry."""

MAX_FILE_BYTES = 200 * 1024**2
"""Files larger than this (bytes) are refused unread."""


@dataclass
class ImportItem:
    """One structure read from a file, ready to become a ``StructureData``."""

    file: str
    """The file as given or found (path)."""
    item: str
    """Which structure of the file: the CIF data block, ``frame 3``, ``row 7``, ``item 'name'`` or ``''``."""
    structure: Structure
    """The structure (oxidation states and site properties as read)."""
    pbc: tuple[bool, bool, bool] = (True, True, True)
    """Periodic boundary conditions (a slab keeps ``(True, True, False)``)."""
    labels: dict[str, Any] = field(default_factory=dict)
    """Scalar labels the file gives (extxyz info, ASE db key-value pairs, JSON record fields)."""

    @property
    def where(self) -> str:
        """How messages name this item: ``file`` or ``file [item]``."""
        return f'{self.file} [{self.item}]' if self.item else self.file


@dataclass(frozen=True)
class ImportFailure:
    """A file, or a structure in a file, that was refused, with the one-line reason."""

    file: str
    item: str
    reason: str

    @property
    def where(self) -> str:
        """How messages name this item: ``file`` or ``file [item]``."""
        return f'{self.file} [{self.item}]' if self.item else self.file


def _one_line(text: object, limit: int = 300) -> str:
    line = ' '.join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + '...'


def _reason(exception: BaseException) -> str:
    message = _one_line(exception)
    return message if message else type(exception).__name__


# ------------------------------------------------------------------------------------------------- finding files
_PATTERN = re.compile(r'[*?\[]')


def collect_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[ImportFailure]]:
    """Expand files, folders (recursively, sorted, hidden entries skipped) and glob patterns into files.

    :return: the files in order, each once (as resolved paths), and a failure for each path that matched nothing.
    """
    files: list[Path] = []
    failures: list[ImportFailure] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for raw in paths:
        text = str(raw)
        path = Path(text)
        if path.is_file():
            add(path)
        elif path.is_dir():
            found = sorted(
                p
                for p in path.rglob('*')
                if p.is_file() and not any(part.startswith('.') for part in p.relative_to(path).parts)
            )
            if not found:
                failures.append(ImportFailure(text, '', 'folder has no files'))
            for p in found:
                add(p)
        elif _PATTERN.search(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))  # noqa: PTH207 (absolute patterns)
            matched = [m for m in matches if m.is_file()]
            if not matched:
                failures.append(ImportFailure(text, '', 'pattern matches no file'))
            for m in matched:
                add(m)
        else:
            failures.append(ImportFailure(text, '', 'no such file or folder'))
    return files, failures


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open('rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def detect_format(path: Path) -> str | None:
    """The format of a file from its name, or from its first bytes when the name says nothing; ``None`` if unknown."""
    name = path.name.lower()
    if name.endswith('.cif') or name.endswith('.mcif'):
        return 'cif'
    if name.endswith(('.xyz', '.extxyz')):
        return 'extxyz'
    if name.endswith('.db'):
        return 'ase-db'
    if name.endswith(('.json', '.json.gz')):
        return 'json'
    if name.endswith(('.vasp', '.poscar')) or name.startswith(('poscar', 'contcar')):
        return 'poscar'
    return _sniff(path)


def _sniff(path: Path) -> str | None:
    try:
        with path.open('rb') as handle:
            head = handle.read(4096)
    except OSError:
        return None
    if head.startswith(b'SQLite format 3'):
        return 'ase-db'
    try:
        text = head.decode('utf-16') if head.startswith((b'\xff\xfe', b'\xfe\xff')) else head.decode('utf-8')
    except UnicodeDecodeError:
        return None
    stripped = text.lstrip()
    if re.search(r'^\s*data_', text, re.MULTILINE) and '_cell_length_a' in text:
        return 'cif'
    if stripped.startswith(('{', '[')) and '"lattice"' in text:
        return 'json'
    lines = text.splitlines()
    if len(lines) > 1 and lines[0].strip().isdigit() and ('Lattice=' in lines[1] or 'Properties=' in lines[1]):
        return 'extxyz'
    if len(lines) >= 8 and _is_poscar_head(lines):
        return 'poscar'
    return None


def _is_poscar_head(lines: list[str]) -> bool:
    try:
        float(lines[1].split()[0])
        for row in lines[2:5]:
            if len([float(v) for v in row.split()[:3]]) != 3:
                return False
    except (ValueError, IndexError):
        return False
    return True


# ------------------------------------------------------------------------------------------------------- reading
def read_file(path: Path, fmt: str = 'auto', *, max_sites: int = MAX_SITES) -> Iterator[ImportItem | ImportFailure]:
    """Yield every structure of one file, or a failure for the file or for each bad structure; never raises.

    Each yielded :class:`ImportItem` has passed :func:`check_structure`.
    """
    name = str(path)
    if fmt not in FORMATS:
        yield ImportFailure(name, '', f'unknown format {fmt!r}; expected one of {", ".join(FORMATS)}')
        return
    try:
        size = path.stat().st_size
    except OSError as exception:
        yield ImportFailure(name, '', f'cannot read: {_reason(exception)}')
        return
    if size == 0:
        yield ImportFailure(name, '', 'empty file')
        return
    if size > MAX_FILE_BYTES:
        yield ImportFailure(
            name, '', f'file of {size / 1024**2:.0f} MiB is larger than {MAX_FILE_BYTES // 1024**2} MiB'
        )
        return
    chosen = detect_format(path) if fmt == 'auto' else fmt
    if chosen is None:
        hint = _binary_hint(path)
        yield ImportFailure(name, '', f'unknown format{hint} (extension {path.suffix or "none"!r}); give --format')
        return
    reader = _READERS[chosen]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for entry in reader(path, max_sites):
                if isinstance(entry, ImportFailure):
                    yield entry
                    continue
                reason = check_structure(entry.structure, max_sites=max_sites)
                yield entry if reason is None else ImportFailure(entry.file, entry.item, reason)
    except Exception as exception:  # a reader that gives up on the whole file
        yield ImportFailure(name, '', f'cannot read as {chosen}: {_reason(exception)}{_format_hint(path, chosen)}')


def _binary_hint(path: Path) -> str:
    """``': binary content, not a structure file'`` when the first 4 KiB are not mostly printable text, else ``''``."""
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return ''
    encoding = 'utf-16' if head.startswith((b'\xff\xfe', b'\xfe\xff')) else 'utf-8'
    text = head.decode(encoding, errors='replace')
    odd = sum(1 for c in text if c == '\ufffd' or (not c.isprintable() and c not in '\n\r\t'))
    return ': binary content, not a structure file' if odd > 0.05 * max(1, len(text)) else ''


def _format_hint(path: Path, chosen: str) -> str:
    sniffed = _sniff(path)
    if sniffed is not None and sniffed != chosen:
        return f' (the content looks like {sniffed}: wrong extension? give --format {sniffed})'
    if _binary_hint(path):
        return ' (binary content)'
    return ''


def _read_text(path: Path) -> str:
    """The text of a file: UTF-8, or UTF-16 / UTF-32 when it starts with a byte-order mark."""
    raw = path.read_bytes()
    marks = (
        (b'\xff\xfe\x00\x00', 'utf-32'),
        (b'\x00\x00\xfe\xff', 'utf-32'),
        (b'\xff\xfe', 'utf-16'),
        (b'\xfe\xff', 'utf-16'),
        (b'\xef\xbb\xbf', 'utf-8-sig'),
    )
    for bom, encoding in marks:
        if raw.startswith(bom):
            return raw.decode(encoding, errors='replace')
    return raw.decode('utf-8', errors='replace')


def _strip_esd(value: str) -> float:
    """A CIF number without its standard uncertainty: ``0.25(3)`` -> 0.25; ``.`` / ``?`` -> NaN."""
    text = value.strip().split('(')[0]
    if text in ('', '.', '?'):
        return math.nan
    return float(text)


def _read_cif(path: Path, max_sites: int) -> Iterator[ImportItem | ImportFailure]:
    from pymatgen.io.cif import CifFile, CifParser

    name = str(path)
    text = _read_text(path)
    if '\x00' in text:
        raise ValueError('binary content, not a CIF')
    try:
        cif = CifFile.from_str(text)
    except Exception as exception:  # pymatgen's CIF tokenizer fails on malformed loops with assorted errors
        raise ValueError(f'malformed or truncated CIF ({type(exception).__name__}: {exception})') from None
    if not cif.data:
        raise ValueError('no data_ block: not a CIF (or truncated)')
    n_with_atoms = 0
    for block_name, block in cif.data.items():
        data = block.data
        if '_atom_site_fract_x' not in data and '_atom_site_Cartn_x' not in data:
            continue  # a block without atoms (e.g. publication data, bond-valence tables)
        n_with_atoms += 1
        labels = data.get('_atom_site_label') or data.get('_atom_site_type_symbol') or []
        n_listed = len(labels) if isinstance(labels, list) else 1
        symops = data.get('_symmetry_equiv_pos_as_xyz') or data.get('_space_group_symop_operation_xyz') or ['x,y,z']
        n_ops = len(symops) if isinstance(symops, list) else 1
        if n_listed > max_sites:
            yield ImportFailure(name, block_name, f'{n_listed} atom sites listed: more than {max_sites}')
            continue
        if n_listed * n_ops > 20 * max_sites:
            yield ImportFailure(
                name, block_name, f'{n_listed} sites x {n_ops} symmetry operations: far more than {max_sites} sites'
            )
            continue
        occupancies = data.get('_atom_site_occupancy')
        if occupancies is not None:
            values = occupancies if isinstance(occupancies, list) else [occupancies]
            bad = None
            for label, raw in zip(labels if isinstance(labels, list) else [labels], values, strict=False):
                try:
                    occupancy = _strip_esd(str(raw))
                except ValueError:
                    bad = f'site {label}: occupancy {raw!r} is not a number'
                    break
                if math.isfinite(occupancy) and not 0 <= occupancy <= 1 + 1e-3:
                    bad = f'site {label} has occupancy {occupancy:g}: occupancies must be in [0, 1]'
                    break
            if bad is not None:
                yield ImportFailure(name, block_name, bad)
                continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter('always')
                parser = CifParser.from_str(str(block), occupancy_tolerance=1.0, site_tolerance=1e-4)
                structures = parser.parse_structures(primitive=False, on_error='raise')
        except Exception as exception:
            reasons = [_one_line(w.message, 120) for w in caught if 'symmetry' not in str(w.message).lower()]
            detail = _reason(exception)
            if reasons:
                detail += f' ({reasons[0]})'
            yield ImportFailure(name, block_name, f'cannot build a structure: {detail}')
            continue
        missing = [str(w.message) for w in caught if 'Missing elements' in str(w.message)]
        if missing:
            yield ImportFailure(name, block_name, _one_line(missing[0]))
            continue
        for structure in structures:
            yield ImportItem(name, block_name, structure, labels={'cif_block': block_name})
    if n_with_atoms == 0:
        yield ImportFailure(name, '', f'CIF with {len(cif.data)} data block(s) but no atom sites (_atom_site_fract_x)')


def _read_poscar(path: Path, max_sites: int) -> Iterator[ImportItem | ImportFailure]:
    from pymatgen.io.vasp import Poscar

    poscar = Poscar.from_str(path.read_text(encoding='utf-8'), read_velocities=False)
    yield ImportItem(str(path), '', poscar.structure, labels={'comment': poscar.comment})


def _atoms_item(
    atoms: Any, file: str, item: str, labels: Mapping[str, Any], max_sites: int = MAX_SITES
) -> ImportItem | ImportFailure:
    """An ASE ``Atoms`` as an item: a crystal, or a slab with a cell of positive volume; molecules refused."""
    from pymatgen.core import Lattice, Structure

    numbers = np.asarray(atoms.numbers)
    if len(numbers) == 0:
        return ImportFailure(file, item, 'no atoms')
    pbc = tuple(bool(p) for p in atoms.pbc)
    matrix = np.asarray(atoms.cell.array, dtype=float)
    if not any(pbc):
        return ImportFailure(file, item, 'a molecule (no periodic boundary conditions, no cell): put it in a box')
    if not np.isfinite(matrix).all():
        return ImportFailure(file, item, 'lattice contains NaN or infinite values')
    if abs(np.linalg.det(matrix)) < MIN_CELL_VOLUME:
        missing = [axis for axis, periodic in zip('abc', pbc, strict=True) if not periodic]
        hint = f' (no cell vector along the non-periodic {", ".join(missing)}: add vacuum)' if missing else ''
        return ImportFailure(file, item, f'zero cell volume{hint}')
    if (numbers < 1).any():
        return ImportFailure(file, item, f'dummy species (atomic number 0) at site {int(np.argmax(numbers < 1))}')
    if len(numbers) > max_sites:
        return ImportFailure(file, item, f'{len(numbers)} sites: more than {max_sites}')
    positions = np.asarray(atoms.positions, dtype=float)
    if not np.isfinite(positions).all():
        return ImportFailure(
            file, item, f'NaN or infinite coordinates at site {int(np.argmax(~np.isfinite(positions).all(1)))}'
        )
    if (numbers > 118).any():
        return ImportFailure(file, item, f'unknown element with atomic number {int(numbers.max())}')
    structure = Structure(
        Lattice(matrix), numbers.tolist(), positions, coords_are_cartesian=True, validate_proximity=False
    )
    magmoms = atoms.arrays.get('initial_magmoms')
    if magmoms is not None:
        structure.add_site_property('magmom', np.asarray(magmoms).tolist())
    return ImportItem(file, item, structure, pbc=pbc, labels=dict(labels))  # type: ignore[arg-type]


def _scalar_labels(values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, bool | int | str) or (isinstance(value, float) and math.isfinite(value)):
            out[str(key)] = value
    return out


def _read_extxyz(path: Path, max_sites: int) -> Iterator[ImportItem | ImportFailure]:
    import ase.io

    frames = ase.io.read(path, index=':', format='extxyz')
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise ValueError('no frames')
    for index, atoms in enumerate(frames):
        labels = _scalar_labels(atoms.info)
        if atoms.calc is not None:
            labels.update(_scalar_labels({k: v for k, v in atoms.calc.results.items() if k not in labels}))
        yield _atoms_item(atoms, str(path), f'frame {index}', labels, max_sites)


def _read_ase_db(path: Path, max_sites: int) -> Iterator[ImportItem | ImportFailure]:
    import ase.db

    database = ase.db.connect(str(path), type='db')
    for row in database.select():
        item = f'row {row.id}'
        try:
            if int(row.natoms) > max_sites:
                yield ImportFailure(str(path), item, f'{row.natoms} sites: more than {max_sites}')
                continue
            atoms = row.toatoms()
        except Exception as exception:
            yield ImportFailure(str(path), item, f'cannot read the atoms: {_reason(exception)}')
            continue
        yield _atoms_item(atoms, str(path), item, _scalar_labels(dict(row.key_value_pairs)), max_sites)


def _read_json(path: Path, max_sites: int) -> Iterator[ImportItem | ImportFailure]:
    from pymatgen.core import Structure

    if path.name.lower().endswith('.gz'):
        with gzip.open(path, 'rt', encoding='utf-8') as handle:
            data = json.load(handle)
    else:
        data = json.loads(path.read_text(encoding='utf-8'))
    name = str(path)
    entries: list[tuple[str, Any, dict[str, Any]]] = []
    if isinstance(data, Mapping) and 'lattice' in data and 'sites' in data:
        entries.append(('', data, {}))
    elif isinstance(data, Mapping):
        entries.extend((f'item {key!r}', value, {'name': str(key)}) for key, value in data.items())
    elif isinstance(data, list):
        for index, entry in enumerate(data):
            if isinstance(entry, Mapping) and 'structure' in entry:
                labels = _scalar_labels({k: v for k, v in entry.items() if k != 'structure'})
                entries.append((f'item {index}', entry['structure'], labels))
            else:
                entries.append((f'item {index}', entry, {}))
    else:
        raise ValueError(f'expected a pymatgen Structure dict, or a list or dict of them, got {type(data).__name__}')
    for item, value, labels in entries:
        if not isinstance(value, Mapping) or 'lattice' not in value or 'sites' not in value:
            yield ImportFailure(name, item, 'not a pymatgen Structure dict (needs "lattice" and "sites")')
            continue
        if isinstance(value['sites'], list) and len(value['sites']) > max_sites:
            yield ImportFailure(name, item, f'{len(value["sites"])} sites: more than {max_sites}')
            continue
        try:
            structure = Structure.from_dict(dict(value))
        except Exception as exception:
            yield ImportFailure(name, item, f'not a valid pymatgen Structure dict: {_reason(exception)}')
            continue
        yield ImportItem(name, item, structure, labels=labels)


_READERS = {
    'cif': _read_cif,
    'poscar': _read_poscar,
    'extxyz': _read_extxyz,
    'ase-db': _read_ase_db,
    'json': _read_json,
}


# ------------------------------------------------------------------------------------------------------ checking
def check_structure(structure: Structure, *, max_sites: int = MAX_SITES) -> str | None:
    """Return why ``structure`` cannot be imported (one line), or ``None`` if it can (checks in the module docstring).

    Partially occupied sites are allowed; only fully occupied sites are checked for overlaps (split positions of
    a disordered site may lie closer together).
    """
    n = len(structure)
    if n == 0:
        return 'no atoms'
    if n > max_sites:
        return f'{n} sites: more than {max_sites}'
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.isfinite(matrix).all():
        return 'lattice contains NaN or infinite values'
    volume = float(np.linalg.det(matrix))
    if abs(volume) < MIN_CELL_VOLUME:
        return f'zero cell volume ({volume:.3g} Å^3): lattice vectors are degenerate'
    if volume < 0:
        return f'negative cell volume ({volume:.4g} Å^3): the lattice vectors are left-handed; reorder them'
    lengths = np.linalg.norm(matrix, axis=1)
    if lengths.max() > MAX_LATTICE_LENGTH:
        return f'lattice vector of {lengths.max():.4g} Å is longer than {MAX_LATTICE_LENGTH:g} Å (wrong units?)'
    frac = np.asarray(structure.frac_coords, dtype=float)
    bad = np.flatnonzero(~np.isfinite(frac).all(axis=1))
    if bad.size:
        return f'NaN or infinite coordinates at site {int(bad[0])}'
    ordered = np.ones(n, dtype=bool)
    for index, site in enumerate(structure):
        total = 0.0
        for species, amount in site.species.items():
            z = int(getattr(species, 'Z', 0) or 0)
            if z < 1 or not hasattr(species, 'symbol') or type(species).__name__ == 'DummySpecies':
                symbol = getattr(species, 'symbol', str(species))
                return f'site {index}: {symbol!r} is not a chemical element (unknown symbol or dummy species)'
            if z > MAX_IMPORT_Z:
                return f'site {index}: element {species.symbol} (Z = {z}) is heavier than Z = {MAX_IMPORT_Z}'
            if amount < 0:
                return f'site {index}: negative occupancy {amount:g} of {species}'
            total += float(amount)
        if total > 1 + 1e-3:
            return f'site {index} has total occupancy {total:.4g} > 1'
        ordered[index] = total >= 1 - 1e-9 and len(site.species) == 1
    cart = frac[ordered] @ matrix
    if len(cart):
        pair = closest_pair(cart, matrix, MIN_INTERATOMIC_DISTANCE)
        if pair is not None:
            sites = np.flatnonzero(ordered)
            i, j, distance = int(sites[pair[0]]), int(sites[pair[1]]), pair[2]
            what = f'site {i} and its periodic image' if i == j else f'sites {i} and {j}'
            return f'overlapping atoms: {what} are {distance:.3f} Å apart (< {MIN_INTERATOMIC_DISTANCE} Å)'
    return None


def describe_structure(structure: Structure) -> dict[str, Any]:
    """Reduced formula, spglib space group (symbol and number; ``None`` when spglib finds none) and disorder flag."""
    import spglib

    disordered = not structure.is_ordered
    types: dict[tuple[tuple[str, float], ...], int] = {}
    numbers = []
    for site in structure:
        key = tuple(sorted((str(sp), round(float(a), 6)) for sp, a in site.species.items()))
        numbers.append(types.setdefault(key, len(types) + 1))
    symbol, number = None, None
    try:
        cell: Any = (structure.lattice.matrix, structure.frac_coords, numbers)
        dataset = spglib.get_symmetry_dataset(cell, symprec=0.01, angle_tolerance=5)
        if dataset is not None:
            symbol, number = str(dataset.international), int(dataset.number)
    except Exception:  # spglib refuses some cells (e.g. too many atoms on one point); the label stays empty
        pass
    return {
        'formula': structure.composition.reduced_formula,
        'space_group': symbol,
        'space_group_number': number,
        'partial_occupancy': disordered,
        'n_sites': len(structure),
    }

"""Kinematic powder XRD peaks, vectorised over the reflections of a structure.

For every reciprocal-lattice vector ``g = h b1 + k b2 + l b3`` (crystallographic reciprocal lattice, no
2π) inside the limiting sphere and the 2θ range, with ``s = |g| / 2 = sin(θ) / λ``:

* atomic scattering factor ``f(s) = Z - 41.78214 s^2 sum_k a_k exp(-b_k s^2)`` with the coefficients
  pymatgen ships (``atomic_scattering_params.json``), times ``exp(-B s^2)`` for an optional per-element
  Debye-Waller factor ``B`` (Å^2);
* structure factor ``F(g) = sum_j occ_j f_j(s) exp(2 pi i g . r_j)``, intensity ``|F|^2``;
* Lorentz-polarisation factor ``(1 + cos^2 2θ) / (sin^2 θ cos θ)``;
* reflections whose 2θ agree to 1e-5° are one peak (summed intensity; multiplicity and hkl families of
  the members, families = permutations of |h|, |k|, |l|); intensities scaled to 100.

This reproduces pymatgen's ``XRDCalculator.get_pattern`` (same conventions, same merging tolerance), which
the tests check peak by peak. Friedel's law halves the work: ``g`` and ``-g`` have equal intensity.

References: B. D. Cullity, S. R. Stock, Elements of X-ray Diffraction (3rd ed., 2001), ch. 4;
International Tables for Crystallography Vol. C, Table 6.1.1.4 (form-factor parametrisation).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, overload

import numpy as np
import torch

from ..device import resolve_device
from ..structures import InvalidStructureError, to_pymatgen, validate_structure
from .augment import XrdAugmentation, background_curves
from .batched import (
    MERGE_TOLERANCE,
    MergedPeaks,
    Reflections,
    Scatterers,
    compute_reflections,
    is_hexagonal,
    lorentz_polarisation,
    merge_reflections,
    read_scatterers,
)
from .profiles import ProfileShape, peak_widths, render_batch, shape_weights, two_theta_grid
from .settings import DEFAULT_XRD, check_two_theta_range, doublet_wavelengths
from .wavelengths import resolve_wavelength

__all__ = ('HklFamilies', 'Peaks', 'XrdSimulator', 'family_arrays')

TWO_THETA_TOL = MERGE_TOLERANCE
"""Reflections whose 2θ (degrees) round to the same multiple of this are merged into one peak."""
SCALED_INTENSITY_TOL = 1e-3
"""Peaks weaker than this (on the 0-100 scale) are dropped."""
_PHASE_CHUNK = 2_000_000
"""Largest number of complex phase factors held at once (memory bound for large cells)."""


@cache
def scattering_params() -> dict[str, np.ndarray]:
    """Atomic scattering-factor coefficients ``(a_k, b_k)`` by element symbol (pymatgen's table)."""
    from importlib import resources

    path = resources.files('pymatgen.analysis.diffraction') / 'atomic_scattering_params.json'
    return {symbol: np.asarray(values, dtype=float) for symbol, values in json.loads(path.read_text()).items()}


class HklFamilies(Sequence[dict[tuple[int, ...], int]]):
    """The hkl families of each peak, stored as arrays and turned into dicts only when read.

    ``families[i]`` is ``{representative hkl: multiplicity}`` for peak ``i``; compares equal to a list of
    such dicts. Families made by :meth:`deferred` are in the conventional standard setting (:mod:`.hkl`),
    computed when first read; :attr:`setting` says which cell the indices refer to.
    """

    __slots__ = ('_counts', '_n', '_pending', '_ptr', '_representatives', '_setting')

    def __init__(
        self, representatives: np.ndarray, counts: np.ndarray, ptr: np.ndarray, setting: str = 'input'
    ) -> None:
        self._representatives = representatives
        self._counts = counts
        self._ptr = ptr
        self._setting = setting
        self._n = len(ptr) - 1
        self._pending: tuple[Any, ...] | None = None

    @classmethod
    def deferred(
        cls,
        fallback: HklFamilies,
        hkl: np.ndarray,
        two_theta: np.ndarray,
        peak_two_theta: np.ndarray,
        multiplicity: np.ndarray,
        cell: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        wavelength: float,
    ) -> HklFamilies:
        """Families in the conventional standard setting, computed from the reflections when first read.

        :param fallback: the families on the input cell (used where no standard cell applies).
        :param hkl: ``(M, 3)`` indices of the structure's reflections sorted by 2θ bin (:data:`TWO_THETA_TOL`)
            and ``two_theta`` their 2θ (degrees).
        :param peak_two_theta: 2θ of each kept peak (its smallest member) and ``multiplicity`` twice its members.
        :param cell: ``(lattice, frac, z, occupancy)`` of the structure's scatterers.
        :param wavelength: the wavelength (Å) the peaks were computed with.
        """
        families = cls(fallback._representatives, fallback._counts, fallback._ptr, 'input')
        families._pending = ('reflections', hkl, two_theta, peak_two_theta, multiplicity, cell, wavelength)
        return families

    @classmethod
    def deferred_members(
        cls,
        fallback: HklFamilies,
        hkl: np.ndarray,
        peak_of: np.ndarray,
        lattice: np.ndarray,
        sites: tuple[np.ndarray, np.ndarray],
        peak_two_theta: np.ndarray,
        wavelength: float,
    ) -> HklFamilies:
        """As :meth:`deferred`, from the reflections of each kept peak (``hkl`` rows, ``peak_of`` their peak).

        :param sites: fractional coordinates and spglib types of the sites (:func:`.hkl.structure_types`).
        """
        families = cls(fallback._representatives, fallback._counts, fallback._ptr, 'input')
        families._pending = ('members', hkl, peak_of, lattice, sites, peak_two_theta, wavelength)
        return families

    def _resolve(self) -> None:
        if self._pending is None:
            return
        from .hkl import conventional_labels, site_types

        pending, self._pending = self._pending, None
        if self._n == 0:
            return
        if pending[0] == 'members':
            _, members, peak_of, lattice, (site_frac, types), peak_two_theta, wavelength = pending
        else:
            _, hkl, two_theta, peak_two_theta, multiplicity, (lattice, frac, z, occupancy), wavelength = pending
            bins = np.rint(np.asarray(two_theta) / TWO_THETA_TOL)
            first = np.searchsorted(bins, np.rint(np.asarray(peak_two_theta) / TWO_THETA_TOL), side='left')
            lengths = np.asarray(multiplicity, dtype=np.int64) // 2
            starts = np.cumsum(lengths) - lengths
            rows = np.repeat(first, lengths) + (np.arange(int(lengths.sum())) - np.repeat(starts, lengths))
            members, peak_of = np.asarray(hkl)[rows], np.repeat(np.arange(self._n), lengths)
            site_frac, types = site_types(np.asarray(z), np.asarray(occupancy), np.asarray(frac))
        labels = conventional_labels(
            members,
            peak_of,
            np.asarray(lattice),
            site_frac,
            types,
            peak_two_theta=np.asarray(peak_two_theta),
            wavelength=wavelength,
        )
        if labels.setting == 'input':
            return  # the kernel's families on the input cell
        self._representatives, self._counts, self._setting = labels.representatives, labels.counts, labels.setting
        self._ptr = np.searchsorted(labels.family_peak, np.arange(self._n + 1))

    @property
    def representatives(self) -> np.ndarray:
        """``(F, 3)`` (or ``(F, 4)`` for hexagonal cells) representative Miller indices of every family."""
        self._resolve()
        return self._representatives

    @property
    def counts(self) -> np.ndarray:
        """``(F,)`` number of reflections in each family."""
        self._resolve()
        return self._counts

    @property
    def ptr(self) -> np.ndarray:
        """``(n_peaks + 1,)``: the families of peak ``i`` are ``ptr[i]:ptr[i + 1]``."""
        self._resolve()
        return self._ptr

    @property
    def setting(self) -> str:
        """``'conventional'`` (standard conventional cell, :mod:`.hkl`) or ``'input'`` (the cell as given)."""
        self._resolve()
        return self._setting

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> dict[tuple[int, ...], int]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[tuple[int, ...], int]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f'peak {index} out of range ({n} peaks)')
        index %= n
        ptr, representatives, counts = self.ptr, self._representatives, self._counts
        rows = range(int(ptr[index]), int(ptr[index + 1]))
        return {tuple(int(v) for v in representatives[k]): int(counts[k]) for k in rows}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (HklFamilies, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f'HklFamilies({list(self)!r})'


@dataclass(frozen=True)
class Peaks:
    """Peaks of one powder pattern, sorted by 2θ."""

    two_theta: np.ndarray
    """Peak positions, 2θ in degrees."""
    intensity: np.ndarray
    """Intensities scaled so that the strongest peak is 100."""
    hkls: Sequence[dict[tuple[int, ...], int]]
    """hkl families of each peak: representative Miller indices (4 for hexagonal cells) -> multiplicity, in the
    conventional standard setting (:mod:`.hkl`) unless :attr:`hkl_setting` says ``'input'``."""
    d_spacing: np.ndarray
    """Interplanar spacings (Å)."""
    multiplicity: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    """Number of reflections merged into each peak."""
    error: str | None = None
    """Why the structure failed (``peaks_many(errors='record')``); the arrays are then empty."""
    setting: str | None = None
    """Which cell the indices of :attr:`hkls` refer to, when ``hkls`` is a plain list (read back from storage)."""

    def __len__(self) -> int:
        return len(self.two_theta)

    @property
    def hkl_setting(self) -> str:
        """Which cell the Miller indices of :attr:`hkls` refer to: ``'conventional'`` (standard) or ``'input'``."""
        return self.setting or str(getattr(self.hkls, 'setting', 'input'))

    @classmethod
    def failed(cls, exception: BaseException | str) -> Peaks:
        """Empty peaks of a structure that failed, with the reason."""
        message = exception if isinstance(exception, str) else f'{type(exception).__name__}: {exception}'
        empty = np.zeros(0)
        return cls(empty, empty, [], empty, np.zeros(0, dtype=int), message)


class XrdSimulator:
    """Powder XRD simulator (kinematic theory; see the module docstring for the physics).

    Two implementations share the conventions: :meth:`peaks` computes one structure with numpy;
    :meth:`peaks_many`, :meth:`profiles_many` and :meth:`patterns_many` compute whole batches at once
    (:mod:`.batched`): compiled numba kernels on the CPU, torch tensors on a GPU (``device='cuda'`` /
    ``'auto'``). All give the same peaks to round-off (tested within 1e-9 relative).

    :param wavelength: anode name (``'CuKa'``, ``'MoKa1'``, ... see :data:`~.wavelengths.WAVELENGTHS`) or Å.
    :param two_theta_range: ``(min, max)`` 2θ in degrees, inside ``(0, 180)``; default 10-110°
        (the setting of Suzuki et al. 2022).
    :param debye_waller: per-element isotropic Debye-Waller factors ``B`` (Å^2), e.g. ``{'Na': 1.5}``.
    :param doublet: render the K-alpha1 / K-alpha2 doublet in profiles (``wavelength`` must then be an anode
        ``'XxKa'`` or ``'XxKa1'``): peaks are listed at K-alpha1 and every profile peak gets a K-alpha2
        companion at ``2 asin(λ2 sin θ1 / λ1)`` with ``kalpha2_ratio`` times its intensity (corrected for
        the Lorentz-polarisation factor at the new angle).
    :param kalpha2_ratio: K-alpha2 / K-alpha1 intensity ratio (0.5, the usual value for Cu).
    :param hkl_setting: ``'conventional'`` (default): label peaks with the Miller indices of the conventional
        standard cell of each structure (:mod:`.hkl`; computed when the labels are first read), as powder
        diffraction cards do; ``'input'``: with the indices of the cell as given. Positions and intensities do
        not depend on it.
    """

    def __init__(
        self,
        wavelength: str | float = DEFAULT_XRD.wavelength,
        two_theta_range: tuple[float, float] = DEFAULT_XRD.two_theta_range,
        debye_waller: dict[str, float] | None = None,
        *,
        doublet: bool = False,
        kalpha2_ratio: float = 0.5,
        hkl_setting: Literal['conventional', 'input'] = 'conventional',
    ) -> None:
        if hkl_setting not in ('conventional', 'input'):
            raise ValueError(f"hkl_setting must be 'conventional' or 'input', got {hkl_setting!r}")
        self.hkl_setting = hkl_setting
        self.wavelength = resolve_wavelength(wavelength)
        self.wavelength2: float | None = None
        self.kalpha2_ratio = float(kalpha2_ratio)
        if doublet:
            self.wavelength, self.wavelength2 = doublet_wavelengths(wavelength)
            if not 0 < self.kalpha2_ratio <= 1:
                raise ValueError(f'kalpha2_ratio must be in (0, 1], got {kalpha2_ratio!r}')
        self.two_theta_range = check_two_theta_range(two_theta_range)
        self.debye_waller = dict(debye_waller or {})
        for symbol, value in self.debye_waller.items():
            if symbol not in scattering_params():
                raise ValueError(f'debye_waller: no scattering factors for element {symbol!r}')
            if not math.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f'debye_waller[{symbol!r}] must be >= 0 Å^2, got {value!r}')

    # ------------------------------------------------------------------------------------ public API
    def peaks(self, structure: Any) -> Peaks:
        """Peaks of one structure (pymatgen ``Structure`` or ASE ``Atoms``), with numpy; raises on bad input."""
        structure = to_pymatgen(structure)
        validate_structure(structure, allow_partial_occupancy=True)
        return self._peaks(structure)

    def peaks_many(
        self,
        structures: Iterable[Any],
        *,
        errors: Literal['raise', 'record'] = 'raise',
        device: str | None = None,
        batch_size: int | None = None,
    ) -> list[Peaks]:
        """Peaks of each structure, computed in batches (see :mod:`.batched`).

        With ``errors='record'`` a bad structure gives an empty :class:`Peaks` whose ``error`` says why,
        and the others are kept; with ``'raise'`` the first one raises ``ValueError`` naming its index.

        :param device: ``None``/``'cpu'``, ``'cuda'`` or ``'auto'``.
        :param batch_size: structures per batch (default 512 on CPU, 4096 on GPU).
        """
        peaks, _, _ = self._simulate(structures, errors, device, batch_size, want_peaks=True, profile=None)
        return peaks  # type: ignore[return-value]

    def profiles_many(
        self,
        structures: Iterable[Any],
        *,
        step: float = DEFAULT_XRD.step,
        shape: ProfileShape = 'pseudo-voigt',
        fwhm: float | None = None,
        caglioti: tuple[float, float, float] | None = None,
        crystallite_size: float | None = None,
        eta: float = 0.5,
        normalize: bool = True,
        window: float | None = None,
        augment: XrdAugmentation | None = None,
        seed: int = 0,
        errors: Literal['raise', 'record'] = 'raise',
        device: str | None = None,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gridded powder patterns of a batch (see :mod:`.profiles` for shapes, widths and ``window``).

        Every reflection is broadened (reflections at the same 2θ merged, no intensity cut-off). The width
        is ``fwhm`` degrees (default :data:`~.settings.DEFAULT_XRD`'s 0.1° when no width option is given),
        Caglioti ``(U, V, W)`` or from a ``crystallite_size`` in Å (Scherrer).

        :param normalize: divide each pattern by its maximum (as Suzuki et al. 2022 do).
        :param augment: seeded augmentations (:class:`~.augment.XrdAugmentation`); pattern ``i`` uses the
            random stream ``(seed, i)``.
        :return: the grid (degrees, ``G`` points) and an ``(N, G)`` float32 array; with ``errors='record'`` the
            rows of bad structures are NaN (``peaks_many(errors='record')`` says why).
        """
        options = self._profile_options(step, shape, fwhm, caglioti, crystallite_size, eta, normalize, window)
        if augment is not None and not isinstance(augment, XrdAugmentation):
            raise ValueError(f'augment must be an XrdAugmentation, got {type(augment).__name__}')
        if augment is not None and augment.active:
            augment.draw(np.zeros(0, dtype=int), seed)  # validates the seed
            options['augment'], options['seed'] = augment, seed
        _, grid, profiles = self._simulate(structures, errors, device, batch_size, want_peaks=False, profile=options)
        assert grid is not None and profiles is not None
        return grid, profiles

    def patterns_many(
        self,
        structures: Iterable[Any],
        *,
        step: float = DEFAULT_XRD.step,
        shape: ProfileShape = 'pseudo-voigt',
        fwhm: float | None = None,
        caglioti: tuple[float, float, float] | None = None,
        crystallite_size: float | None = None,
        eta: float = 0.5,
        normalize: bool = True,
        window: float | None = None,
        errors: Literal['raise', 'record'] = 'raise',
        device: str | None = None,
        batch_size: int | None = None,
    ) -> tuple[list[Peaks], np.ndarray, np.ndarray]:
        """Peaks and profiles of a batch from one computation of the reflections.

        Options as :meth:`profiles_many` (no augmentation); returns ``(peaks, grid, profiles)``.
        """
        options = self._profile_options(step, shape, fwhm, caglioti, crystallite_size, eta, normalize, window)
        peaks, grid, profiles = self._simulate(structures, errors, device, batch_size, want_peaks=True, profile=options)
        assert grid is not None and profiles is not None
        return peaks, grid, profiles  # type: ignore[return-value]

    # ---------------------------------------------------------------------------------------- batches
    def _profile_options(
        self,
        step: float,
        shape: str,
        fwhm: float | None,
        caglioti: tuple[float, float, float] | None,
        crystallite_size: float | None,
        eta: float,
        normalize: bool,
        window: float | None,
    ) -> dict[str, Any]:
        if fwhm is None and caglioti is None and crystallite_size is None:
            fwhm = DEFAULT_XRD.fwhm
        grid = two_theta_grid(self.two_theta_range, step)
        shape_weights(shape, eta)
        if window is not None and not (isinstance(window, (int, float)) and window > 0):
            raise ValueError(f'window must be > 0 FWHM (or math.inf), got {window!r}')
        widths = {'fwhm': fwhm, 'caglioti': caglioti, 'crystallite_size': crystallite_size}
        peak_widths(grid, self.wavelength, fwhm=fwhm, caglioti=caglioti, crystallite_size=crystallite_size)  # checks
        return {'grid': grid, 'shape': shape, 'eta': float(eta), 'normalize': bool(normalize), 'window': window,
                'widths': widths, 'augment': None, 'seed': 0}  # fmt: skip

    def _simulate(
        self,
        structures: Iterable[Any],
        errors: str,
        device: str | None,
        batch_size: int | None,
        *,
        want_peaks: bool,
        profile: dict[str, Any] | None,
    ) -> tuple[list[Peaks | None], np.ndarray | None, np.ndarray | None]:
        if errors not in ('raise', 'record'):
            raise ValueError(f"errors must be 'raise' or 'record', got {errors!r}")
        torch_device = resolve_device(device)
        if batch_size is None:
            batch_size = 4096 if torch_device.type == 'cuda' else 512
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        items = list(structures)
        peaks: list[Peaks | None] = [None] * len(items)
        grid = profile['grid'] if profile is not None else None
        profiles = np.full((len(items), len(grid)), np.nan, dtype=np.float32) if grid is not None else None
        for start in range(0, len(items), batch_size):
            chunk = items[start : start + batch_size]
            scatterers, good, failed = read_scatterers(chunk)
            if failed and errors == 'raise':
                index = min(failed)
                exception = failed[index]
                raise ValueError(f'structure {start + index}: {exception} ({type(exception).__name__})') from exception
            for index, exception in failed.items():
                peaks[start + index] = Peaks.failed(exception)
            if not good:
                continue
            rows = np.asarray(good) + start
            augment: XrdAugmentation | None = profile['augment'] if profile is not None else None
            draws = augment.draw(rows, profile['seed']) if augment is not None and profile is not None else None
            orientation = None
            if draws is not None and augment is not None and augment.preferred_orientation is not None:
                orientation = (draws['axis'], draws['march'])
            with torch.no_grad():
                reflections = compute_reflections(
                    scatterers, self.wavelength, self.two_theta_range, self.debye_waller, torch_device,
                    preferred_orientation=orientation,
                )  # fmt: skip
                if want_peaks:
                    for index, result in zip(good, self._split_peaks(scatterers, reflections), strict=True):
                        peaks[start + index] = result
                if profile is not None and profiles is not None:
                    merged = merge_reflections(reflections)
                    profiles[rows] = self._render(merged, len(good), profile, draws).cpu().numpy()
        return peaks, grid, profiles

    def _split_peaks(self, scatterers: Scatterers, reflections: Reflections) -> list[Peaks]:
        """Per-structure :class:`Peaks` from the sorted reflections of a batch (merging, cut-off, hkl families).

        Done by the compiled :func:`._kernels.split_peaks` on CPU arrays, whichever device computed them.
        """
        from ._kernels import split_peaks

        n_structures = scatterers.n_structures
        structure = reflections.structure.cpu().numpy()
        offsets = np.searchsorted(structure, np.arange(n_structures + 1)).astype(np.int64)
        hexagonal = is_hexagonal(scatterers.lattice)
        columns = np.where(hexagonal, 4, 3)
        (_, two_theta, intensity, d_spacing, multiplicity, family_ptr, representatives, counts, peak_ptr) = (
            split_peaks(
                offsets, reflections.hkl.cpu().numpy(), reflections.g.cpu().numpy(),
                reflections.two_theta.cpu().numpy(), reflections.intensity.cpu().numpy(), hexagonal,
                MERGE_TOLERANCE, SCALED_INTENSITY_TOL,
            )
        )  # fmt: skip
        conventional = self.hkl_setting == 'conventional'
        if conventional:
            hkl_rows, two_theta_rows = reflections.hkl.cpu().numpy(), reflections.two_theta.cpu().numpy()
            lattices, site_ptr = scatterers.lattice, scatterers.ptr
        out = []
        for s in range(n_structures):
            lo, hi = int(peak_ptr[s]), int(peak_ptr[s + 1])
            f_lo, f_hi = int(family_ptr[lo]), int(family_ptr[hi])
            families = HklFamilies(
                representatives[f_lo:f_hi, : columns[s]], counts[f_lo:f_hi], family_ptr[lo : hi + 1] - f_lo
            )
            if conventional:
                r_lo, r_hi, a_lo, a_hi = int(offsets[s]), int(offsets[s + 1]), int(site_ptr[s]), int(site_ptr[s + 1])
                cell = (
                    lattices[s],
                    scatterers.frac[a_lo:a_hi],
                    scatterers.z[a_lo:a_hi],
                    scatterers.occupancy[a_lo:a_hi],
                )
                families = HklFamilies.deferred(
                    families,
                    hkl_rows[r_lo:r_hi],
                    two_theta_rows[r_lo:r_hi],
                    two_theta[lo:hi],
                    multiplicity[lo:hi],
                    cell,
                    self.wavelength,
                )
            out.append(
                Peaks(
                    two_theta=two_theta[lo:hi],
                    intensity=intensity[lo:hi],
                    hkls=families,
                    d_spacing=d_spacing[lo:hi],
                    multiplicity=multiplicity[lo:hi],
                )
            )
        return out

    def _render(
        self, merged: MergedPeaks, n_rows: int, options: dict[str, Any], draws: dict[str, np.ndarray] | None
    ) -> torch.Tensor:
        """Profiles ``(n_rows, G)`` of the merged peaks (every peak, no cut-off), with K-alpha2 and augmentations."""
        grid = options['grid']
        device = merged.two_theta.device
        row, center, height = merged.structure, merged.two_theta, merged.intensity
        if self.wavelength2 is not None:
            sin2 = torch.sin(torch.deg2rad(center) / 2) * (self.wavelength2 / self.wavelength)
            ok = sin2 < 1
            center2 = torch.rad2deg(2 * torch.asin(sin2[ok]))
            height2 = self.kalpha2_ratio * height[ok] * lorentz_polarisation(center2) / lorentz_polarisation(center[ok])
            row, center, height = torch.cat([row, row[ok]]), torch.cat([center, center2]), torch.cat([height, height2])
        if draws is not None:
            center = center + torch.as_tensor(draws['shift'], device=device)[row]
        # the widths of profiles.peak_widths (one array of P numbers, computed on the CPU)
        width = torch.as_tensor(peak_widths(center.cpu().numpy(), self.wavelength, **options['widths']), device=device)
        if draws is not None:
            width = width * torch.as_tensor(draws['broaden'], device=device)[row]
        patterns = render_batch(n_rows, grid, row, center, height, width, options['shape'], options['eta'],
                                options['window'])  # fmt: skip
        if draws is not None:
            augment: XrdAugmentation = options['augment']
            peak = patterns.max(dim=1, keepdim=True).values
            if augment.background:
                curves = background_curves(grid, draws['chebyshev']) * draws['background'][:, None]
                patterns = patterns + torch.as_tensor(curves, dtype=patterns.dtype, device=device) * peak
            if augment.noise:
                noise = np.stack(
                    [np.random.default_rng(int(s)).standard_normal(len(grid)) for s in draws['noise_seed']]
                )
                noise_t = torch.as_tensor(noise, dtype=patterns.dtype, device=device)
                patterns = torch.clamp(patterns + augment.noise * peak * noise_t, min=0)
        if options['normalize']:
            peak = patterns.max(dim=1, keepdim=True).values
            patterns = torch.where(peak > 0, patterns / torch.where(peak > 0, peak, 1.0), patterns)
        return patterns

    # ------------------------------------------------------------------------------- numpy, one cell
    def _reflections(self, lattice: Any) -> tuple[np.ndarray, np.ndarray]:
        """Miller indices ``(M, 3)`` and ``|g|`` (1/Å) inside the 2θ range, one of each Friedel pair."""
        low, high = (2 * math.sin(math.radians(t / 2)) / self.wavelength for t in self.two_theta_range)
        reciprocal = np.asarray(lattice.reciprocal_lattice_crystallographic.matrix)
        bounds = np.floor(high * np.asarray(lattice.abc)).astype(int)  # |h| <= g_max |a| (planes of g)
        axes = [np.arange(-b, b + 1) for b in bounds]
        hkl = np.stack(np.meshgrid(*axes, indexing='ij'), axis=-1).reshape(-1, 3)
        h, k, l_ = hkl.T
        half = (h > 0) | ((h == 0) & (k > 0)) | ((h == 0) & (k == 0) & (l_ > 0))
        hkl = hkl[half]
        g = np.linalg.norm(hkl @ reciprocal, axis=1)
        keep = (g <= high) & (g >= low)
        hkl, g = hkl[keep], g[keep]
        order = np.lexsort((-hkl[:, 2], -hkl[:, 1], -hkl[:, 0], g))
        return hkl[order], g[order]

    def reflections(self, structure: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every reflection (one of each Friedel pair) of a validated structure, before merging.

        :return: Miller indices ``(M, 3)``, ``|g|`` (1/Å), 2θ (degrees) and intensity (arbitrary units,
            counting both Friedel mates), sorted by ``|g|``.
        """
        hkl, g = self._reflections(structure.lattice)
        if not len(g):
            return hkl, g, np.zeros(0), np.zeros(0)
        s2 = (g / 2) ** 2
        theta = np.arcsin(np.clip(self.wavelength * g / 2, -1, 1))
        params = scattering_params()
        f_hkl = np.zeros(len(g), dtype=np.complex128)
        by_element: dict[str, tuple[int, list[np.ndarray], list[float]]] = {}
        for site in structure:
            for species, occupancy in site.species.items():
                symbol = species.symbol
                if symbol not in params:
                    raise InvalidStructureError(f'no X-ray scattering factors for element {symbol}')
                entry = by_element.setdefault(symbol, (int(species.Z), [], []))
                entry[1].append(site.frac_coords)
                entry[2].append(float(occupancy))
        hkl_float = hkl.astype(float)
        for symbol, (z, coords, occupancies) in by_element.items():
            a, b = params[symbol][:, 0], params[symbol][:, 1]
            form = z - 41.78214 * s2 * np.sum(a * np.exp(-b * s2[:, None]), axis=1)
            if self.debye_waller.get(symbol):
                form = form * np.exp(-self.debye_waller[symbol] * s2)
            frac = np.asarray(coords).T
            occ = np.asarray(occupancies)
            rows = max(1, _PHASE_CHUNK // frac.shape[1])
            for start in range(0, len(g), rows):
                part = slice(start, start + rows)
                f_hkl[part] += form[part] * (np.exp(2j * math.pi * (hkl_float[part] @ frac)) @ occ)
        cos2t = np.cos(2 * theta)
        lorentz = (1 + cos2t**2) / (np.sin(theta) ** 2 * np.cos(theta))
        intensity = 2 * (f_hkl * f_hkl.conjugate()).real * lorentz
        return hkl, g, np.degrees(2 * theta), intensity

    def _peaks(self, structure: Any) -> Peaks:
        hkl, g, two_theta, intensity = self.reflections(structure)
        if not len(g):
            return Peaks(np.zeros(0), np.zeros(0), [], np.zeros(0), np.zeros(0, dtype=int))
        keys, first, group = np.unique(
            np.round(two_theta / TWO_THETA_TOL).astype(np.int64), return_index=True, return_inverse=True
        )
        group = group.reshape(-1)
        summed = np.bincount(group, weights=intensity, minlength=len(keys))
        if not summed.max() > 0:  # every reflection extinct (e.g. a huge Debye-Waller factor): no peaks
            return Peaks(np.zeros(0), np.zeros(0), [], np.zeros(0), np.zeros(0, dtype=int))
        keep = summed / summed.max() * 100 > SCALED_INTENSITY_TOL
        members = np.argsort(group, kind='stable')  # reflections by peak, in |g| order within a peak
        bounds = np.searchsorted(group[members], np.arange(len(keys) + 1))
        rank = np.cumsum(keep) - 1
        selected = keep[group[members]]
        indices = hkl[members][selected]
        peak_of = rank[group[members]][selected]
        n_kept = int(keep.sum())
        members = indices
        if structure.lattice.is_hexagonal():
            indices = np.column_stack([indices[:, 0], indices[:, 1], -indices[:, 0] - indices[:, 1], indices[:, 2]])
        representatives, counts, family_peak = family_arrays(indices, peak_of)
        families = HklFamilies(representatives, counts, np.searchsorted(family_peak, np.arange(n_kept + 1)))
        if self.hkl_setting == 'conventional':
            from .hkl import structure_types

            families = HklFamilies.deferred_members(
                families,
                members,
                peak_of,
                np.asarray(structure.lattice.matrix),
                structure_types(structure),
                two_theta[first][keep],
                self.wavelength,
            )
        kept = summed[keep]
        return Peaks(
            two_theta=two_theta[first][keep],
            intensity=kept / kept.max() * 100,
            hkls=families,
            d_spacing=1.0 / g[first][keep],
            multiplicity=2 * np.diff(bounds)[keep],
        )


def family_arrays(hkl: np.ndarray, peak_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hkl families of many peaks at once.

    Each reflection ``hkl`` (rows grouped by peak, ``peak_of`` non-decreasing) stands for itself and its
    Friedel mate ``-hkl``; members of one peak whose ``|h|, |k|, |l|`` (``|h|, |k|, |i|, |l|`` for hexagonal
    cells) are permutations of each other form a family, represented by its largest index tuple, with the
    number of members as multiplicity (pymatgen's ``get_unique_families`` convention).

    :return: representatives ``(F, c)``, multiplicities ``(F,)`` and the peak of each family, ordered by
        peak and, within a peak, by first member.
    """
    n, columns = hkl.shape
    if n == 0:
        return np.zeros((0, columns), dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    hkl = hkl.astype(np.int64)
    peak_of = peak_of.astype(np.int64)
    base = int(np.abs(hkl).max()) + 1
    width = 2 * base + 1
    if width**columns * (int(peak_of.max()) + 1) >= 2**62:  # indices too large for one integer key
        return _family_arrays_lexsort(hkl, peak_of)
    signature = np.sort(np.abs(hkl), axis=1)  # the same for hkl and its Friedel mate -hkl
    key = peak_of.copy()
    for c in range(columns):
        key = key * base + signature[:, c]
    order = np.argsort(key, kind='stable')
    ordered = key[order]
    new = np.ones(n, dtype=bool)
    new[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(new)
    first = order[starts]  # the earliest member (stable sort)
    counts = 2 * np.diff(np.append(starts, n))  # each reflection and its Friedel mate
    # representative: the largest of hkl and -hkl over the family, compared as index tuples
    weights = width ** np.arange(columns - 1, -1, -1, dtype=np.int64)
    row_key = np.maximum((hkl + base) @ weights, (base - hkl) @ weights)
    best = np.maximum.reduceat(row_key[order], starts)
    representatives = (best[:, None] // weights) % width - base
    chronological = np.argsort(first, kind='stable')
    return representatives[chronological], counts[chronological], peak_of[first][chronological]


def _family_arrays_lexsort(hkl: np.ndarray, peak_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`family_arrays` for indices too large to pack into one integer (multi-key sorts)."""
    n, columns = hkl.shape
    rows = np.empty((2 * n, columns), dtype=np.int64)
    rows[0::2], rows[1::2] = hkl, -hkl
    peak = np.repeat(peak_of, 2)
    signature = np.sort(np.abs(rows), axis=1)
    order = np.lexsort((*(signature[:, c] for c in reversed(range(columns))), peak))  # stable
    ordered_signature, ordered_peak = signature[order], peak[order]
    new = np.ones(2 * n, dtype=bool)
    new[1:] = (ordered_peak[1:] != ordered_peak[:-1]) | (ordered_signature[1:] != ordered_signature[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    family = np.empty(2 * n, dtype=np.int64)
    family[order] = np.cumsum(new) - 1
    first = order[starts]
    counts = np.diff(np.append(starts, 2 * n))
    by_size = np.lexsort((*(-rows[:, c] for c in reversed(range(columns))), family))
    representatives = rows[by_size[np.searchsorted(family[by_size], np.arange(len(starts)))]]
    chronological = np.argsort(first, kind='stable')
    return representatives[chronological], counts[chronological], peak[first][chronological]

"""``matembed.xrd_patterns``: simulated powder patterns (peaks and gridded profiles) of a batch."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from aiida import orm

from ..core.xrd import Peaks
from ..core.xrd.settings import XrdSettings

__all__ = ('XrdPatternsData',)


_QUERYABLE = (
    'wavelength',
    'wavelength_angstrom',
    'two_theta_range',
    'step',
    'shape',
    'fwhm',
    'eta',
    'doublet',
    'hkl_setting',
)


class XrdPatternsData(orm.ArrayData):
    """Powder patterns of ``N`` structures simulated with one set of settings.

    * arrays: ``two_theta_grid`` (G,), ``profiles`` (N, G float32; NaN rows for failures), and the peaks of all
      structures concatenated: ``peak_two_theta``, ``peak_intensity`` (max 100 per structure),
      ``peak_d_spacing`` (Å), ``peak_multiplicity``, with ``peak_ptr`` (N + 1) giving each structure's slice;
    * attributes (queryable): ``wavelength`` (as given: anode name or Å), ``wavelength_angstrom``,
      ``two_theta_range``, ``step``, ``shape``, ``fwhm``, ``eta``, ``doublet``, ``settings`` (all options),
      ``n_patterns``, ``n_failed``;
    * repository ``meta.json``: ``rows`` (structure UUIDs), ``hkls`` (families of each peak, Miller indices of the
      conventional standard cell unless ``hkl_settings`` says ``'input'`` for that row) and ``failures``.
    """

    _META = 'meta.json'

    def __init__(
        self,
        grid: np.ndarray | None = None,
        profiles: np.ndarray | None = None,
        peaks: Sequence[Peaks] | None = None,
        *,
        settings: dict[str, Any] | None = None,
        rows: Sequence[str | None] | None = None,
        failures: Sequence[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the node from a grid, ``(N, G)`` profiles and ``N`` :class:`Peaks` (empty for failures)."""
        super().__init__(**kwargs)
        if grid is None or profiles is None or peaks is None:
            return
        profiles = np.asarray(profiles, dtype=np.float32)
        if profiles.ndim != 2 or profiles.shape[1] != len(grid) or len(peaks) != len(profiles):
            raise ValueError(f'profiles {profiles.shape} do not match grid ({len(grid)}) and peaks ({len(peaks)})')
        settings = dict(settings or {})
        rows = list(rows) if rows is not None else [None] * len(profiles)
        counts = [len(p) for p in peaks]
        self.set_array('two_theta_grid', np.asarray(grid, dtype=float))
        self.set_array('profiles', profiles)
        for name, attribute in (
            ('peak_two_theta', 'two_theta'),
            ('peak_intensity', 'intensity'),
            ('peak_d_spacing', 'd_spacing'),
            ('peak_multiplicity', 'multiplicity'),
        ):
            parts = [np.asarray(getattr(p, attribute)) for p in peaks]
            self.set_array(name, np.concatenate(parts) if parts else np.zeros(0))
        self.set_array('peak_ptr', np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        hkls = [[[[list(hkl), mult] for hkl, mult in family.items()] for family in p.hkls] for p in peaks]
        settings_of_hkls = [p.hkl_setting for p in peaks]
        meta = {
            'rows': rows,
            'hkls': hkls,
            'hkl_settings': settings_of_hkls,
            'failures': [dict(f) for f in failures or []],
        }
        self.base.repository.put_object_from_filelike(io.BytesIO(json.dumps(meta).encode()), self._META)  # type: ignore[arg-type]
        self.base.attributes.set_many(
            {
                **{key: settings.get(key) for key in _QUERYABLE},
                'settings': settings,
                'n_patterns': len(profiles),
                'n_failed': len(failures or []),
            }
        )

    def _meta(self) -> dict[str, Any]:
        return json.loads(self.base.repository.get_object_content(self._META, mode='r'))

    @property
    def rows(self) -> list[str | None]:
        """UUID of the structure of each pattern."""
        return list(self._meta()['rows'])

    @property
    def failures(self) -> list[dict[str, Any]]:
        """Failed rows: ``index``, ``uuid``, ``error_type``, ``message``."""
        return list(self._meta()['failures'])

    @property
    def xrd_settings(self) -> XrdSettings:
        """The :class:`~aiida_matembed.core.xrd.settings.XrdSettings` the patterns were simulated with."""
        return XrdSettings.from_dict(self.base.attributes.get('settings'))

    @property
    def grid(self) -> np.ndarray:
        """2θ grid (degrees)."""
        return self.get_array('two_theta_grid')

    @property
    def profiles(self) -> np.ndarray:
        """``(N, G)`` profiles, divided by their maximum (NaN rows for failures)."""
        return self.get_array('profiles')

    def hkl_families(self) -> list[list[dict[tuple[int, ...], int]]]:
        """The hkl families of every peak of every pattern (``[row][peak]``: ``{hkl: multiplicity}``), read once."""
        return [_families(row) for row in self._meta()['hkls']]

    def peaks(self, row: int) -> Peaks:
        """The :class:`Peaks` of pattern ``row`` (hkl families included)."""
        ptr = self.get_array('peak_ptr')
        part = slice(int(ptr[row]), int(ptr[row + 1]))
        meta = self._meta()
        families = _families(meta['hkls'][row])
        settings_of_hkls = meta.get('hkl_settings') or []
        return Peaks(
            two_theta=self.get_array('peak_two_theta')[part],
            intensity=self.get_array('peak_intensity')[part],
            hkls=families,
            d_spacing=self.get_array('peak_d_spacing')[part],
            multiplicity=self.get_array('peak_multiplicity')[part],
            setting=settings_of_hkls[row] if row < len(settings_of_hkls) else 'input',
        )


def _families(row: list[Any]) -> list[dict[tuple[int, ...], int]]:
    """Stored ``[[hkl, multiplicity], ...]`` of each peak of one pattern as ``{hkl: multiplicity}`` dicts."""
    return [{tuple(hkl): mult for hkl, mult in peak} for peak in row]

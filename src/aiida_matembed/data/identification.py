"""``matembed.phase_identification``: the result of identifying the phases of a measured pattern."""

from __future__ import annotations

from typing import Any

from aiida import orm

__all__ = ('PhaseIdentificationData',)


class PhaseIdentificationData(orm.Dict):
    """Matches and fitted phases of one measured pattern (a ``Dict``; everything is a queryable attribute).

    Keys: ``matches`` and ``phases`` (lists of dicts with ``pk``, ``uuid``, ``formula``, ``score``, ``d_scale``,
    ``zero_shift``, and for phases ``weight_fraction``), ``phase_uuids``, ``phase_formulas``, ``rwp``,
    ``weight_basis``, ``unexplained_peaks``, ``n_candidates``, ``wavelength`` (Å), ``warnings``. The creating
    process (``matembed.identify_phases``) has the measured pattern (``pattern``), the candidates' simulated peaks
    (``references``) and the candidate structures (``structures``) as inputs.
    """

    @property
    def phases(self) -> list[dict[str, Any]]:
        return list(self.get('phases', []))

    @property
    def matches(self) -> list[dict[str, Any]]:
        return list(self.get('matches', []))

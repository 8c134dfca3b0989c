"""Foundation-model features: ``matembed.chgnet``, the crystal features of the pretrained CHGNet.

CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)) is a graph neural network potential pretrained
on the Materials Project trajectory data set (MPtrj, ~1.5 million DFT energies, forces, stresses and
magnetic moments). Its last message-passing layer gives a 64-dimensional feature vector per atom; the
"crystal features" are their sum over the atoms of the cell (the model's read-out pools by summation and
then applies the energy MLP per atom), the vector CHGNet returns as ``crystal_fea`` from
``CHGNet.predict_structure(..., return_crystal_feas=True)``. These are what :class:`Chgnet` returns.

CHGNet is an optional extra (``pip install "aiida-matembed[chgnet]"``); it is imported only when
features are computed, so the representation is registered and listed without it. The pretrained
weights ship inside the ``chgnet`` wheel: nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np

from ..device import check_device, resolve_device
from ..elements import SYMBOLS
from ..structures import Cell, InvalidStructureError
from .base import ErrorMode, FeatureResult
from .structural import StructuralRepresentation, _check_int

__all__ = ('CHGNET_MAX_Z', 'CHGNET_MODEL_VERSIONS', 'Chgnet')

DENG_2023 = (
    '@article{deng2023chgnet, title={CHGNet as a pretrained universal neural network potential for '
    'charge-informed atomistic modelling}, author={Deng, Bowen and Zhong, Peichen and Jun, KyuJung and '
    'Riebesell, Janosh and Han, Kevin and Bartel, Christopher J. and Ceder, Gerbrand}, '
    'journal={Nature Machine Intelligence}, volume={5}, number={9}, pages={1031--1041}, year={2023}, '
    'doi={10.1038/s42256-023-00716-3}}'
)

CHGNET_MODEL_VERSIONS = ('0.3.0', '0.2.0', 'r2scan')
"""Pretrained checkpoints shipped in the ``chgnet`` 0.4 wheel (``CHGNet.load(model_name=...)``)."""
CHGNET_MAX_Z = 94
"""CHGNet's atom embedding covers H to Pu; heavier elements cannot be featurised."""
CHGNET_FEATURES = 64
"""Width of CHGNet's atom (hence crystal) features in every shipped checkpoint."""

INSTALL_HINT = 'matembed.chgnet needs the optional extra: pip install "aiida-matembed[chgnet]"'

Precision = Literal['float64', 'float32']
Device = str
"""A device name of :mod:`aiida_matembed.core.device` (``'cpu'``, ``'cuda'``, ``'cuda:N'``, ``'auto'``)."""


def _import_chgnet() -> Any:
    """Return the ``chgnet.model`` module; raise ImportError with the install command if it is missing."""
    try:
        import chgnet.model as chgnet_model
    except ImportError as exception:
        raise ImportError(f'{INSTALL_HINT} ({exception})') from exception
    return chgnet_model


@functools.lru_cache(maxsize=4)
def _load_model(model_version: str, device: str, precision: Precision) -> Any:
    """Load a pretrained CHGNet once per process (per version, device and precision), in eval mode.

    CHGNet's own prints ("CHGNet v0.3.0 initialized with ...") are swallowed. The composition model
    (per-element reference energies) is dropped: it changes only the energy, not the crystal features,
    and it works in float32 only.
    """
    chgnet_model = _import_chgnet()
    with contextlib.redirect_stdout(io.StringIO()):
        model = chgnet_model.CHGNet.load(model_name=model_version, use_device='cpu', verbose=False)
    model.composition_model = None
    if precision == 'float64':
        model = model.double()
    model = model.to(device)
    model.eval()
    return model


class Chgnet(StructuralRepresentation):
    """CHGNet crystal features: the sum over atoms of the pretrained model's 64 atom features.

    The values are CHGNet's ``crystal_fea`` (``CHGNet.predict_structure(structures,
    return_crystal_feas=True)``) of the pretrained model ``CHGNet.load(model_name=model_version)``
    (dimensionless learned features). CHGNet builds its graph from all neighbours within 6 Å (5 Å for
    ``'0.2.0'``) and angles between bonds shorter than 3 Å.

    * **Extensive:** the read-out sums over atoms, so a supercell of ``n`` cells has ``n`` times the
      features (divide by the number of sites for per-atom features).
    * **Precision:** CHGNet computes in float32, so its features change by up to ~5e-6 of the largest
      feature when the crystal is rotated (~1e-7 when its sites are reordered or it is featurised in
      another batch). With the default ``precision='float64'`` the same weights are evaluated in double
      precision from the float64 coordinates: the features are then invariant to round-off (~1e-14) and
      differ from CHGNet's own float32 output by up to ~3e-6 of the largest feature (the 288 AFLOW
      prototypes), at about twice the CPU time. ``'float32'`` gives CHGNet's own numbers.
    * **Refused inputs** (recorded per structure, the rest of the batch is kept): elements beyond Pu
      (Z > 94), partial occupancy, atoms with no neighbour within the graph cutoff (isolated atoms)
      and the checks every structural representation makes. Should the model still fail on a batch,
      the batch is recomputed one structure at a time so that only the culprits fail.

    The model is loaded once per process (a few seconds, importing chgnet included) and runs on torch's threads
    (``torch.set_num_threads``); ``n_jobs`` is ignored.

    Reference: B. Deng, P. Zhong, K. Jun, J. Riebesell, K. Han, C. J. Bartel and G. Ceder,
    Nat. Mach. Intell. 5, 1031 (2023), doi:10.1038/s42256-023-00716-3.

    :param model_version: pretrained checkpoint: ``'0.3.0'`` (MPtrj, default), ``'0.2.0'`` or
        ``'r2scan'`` (transfer-learned to r2SCAN).
    :param precision: ``'float64'`` (default) or ``'float32'`` (CHGNet's native precision).
    :param batch_size: structures per forward pass (memory only; the features do not depend on it).
    :param device: ``'cpu'`` (default), ``'cuda'`` / ``'cuda:N'`` (fails clearly without a GPU) or ``'auto'``.
    """

    name = 'matembed.chgnet'
    version = 1
    output_kind = 'vector'
    intensive = False
    threaded = True
    """CHGNet runs on torch's thread pool; forking a process that holds it can deadlock."""
    description = 'CHGNet crystal features: sum of the 64 atom features of the pretrained model (Deng et al. 2023)'

    def __init__(
        self,
        *,
        model_version: str = '0.3.0',
        precision: Precision = 'float64',
        batch_size: int = 64,
        device: Device = 'cpu',
    ) -> None:
        if model_version not in CHGNET_MODEL_VERSIONS:
            raise ValueError(
                f'unknown CHGNet model_version {model_version!r}; shipped checkpoints: '
                f'{", ".join(CHGNET_MODEL_VERSIONS)}'
            )
        self.model_version = model_version
        if precision not in ('float64', 'float32'):
            raise ValueError(f"precision must be 'float64' or 'float32', got {precision!r}")
        self.precision: Precision = precision
        self.batch_size = _check_int(batch_size, 'batch_size', 1, 100_000)
        check_device(device)
        self.device: Device = device

    def citations(self) -> list[str]:
        return [DENG_2023]

    def feature_labels(self) -> list[str]:
        return [f'chgnet_{i}' for i in range(CHGNET_FEATURES)]

    def featurize_many(
        self,
        structures: Iterable[Any],
        *,
        n_jobs: int = 1,
        errors: ErrorMode = 'raise',
    ) -> FeatureResult:
        """Featurise a batch (see :meth:`Representation.featurize_many`).

        :raises ImportError: when the optional extra ``chgnet`` is not installed (before any structure is
            looked at, so that a missing package is never recorded as a failure of every row).
        :raises ~aiida_matembed.core.device.NoGpuError: for ``device='cuda'`` without a GPU.
        """
        _import_chgnet()
        str(resolve_device(self.device))
        return super().featurize_many(structures, n_jobs=n_jobs, errors=errors)

    def _model(self) -> Any:
        return _load_model(self.model_version, str(resolve_device(self.device)), self.precision)

    def _check_cell(self, cell: Cell) -> Any:
        """Refuse elements beyond Pu and isolated atoms; return CHGNet's graph of the cell."""
        heavy = cell.z[cell.z > CHGNET_MAX_Z]
        if heavy.size:
            z = int(heavy[0])
            raise InvalidStructureError(
                f'element {SYMBOLS[z - 1]} (Z = {z}) is not supported by CHGNet, which knows H to Pu (Z <= 94)'
            )
        import torch
        from pymatgen.core import Lattice, Structure

        converter = self._model().graph_converter
        structure = Structure(Lattice(cell.lattice), cell.z.tolist(), cell.frac)
        try:
            graph = converter(structure)
        except ValueError as exception:
            if 'isolated atom' not in str(exception):
                raise
            raise InvalidStructureError(
                f'isolated atom(s): no neighbour within {converter.atom_graph_cutoff} Å, the cutoff of '
                "CHGNet's atom graph; CHGNet cannot featurise this structure"
            ) from None
        if self.precision == 'float64':
            # CHGNet's converter rounds the coordinates to float32; rebuild them from the float64 ones
            graph.atom_frac_coord = torch.tensor(cell.frac, dtype=torch.float64)
            graph.lattice = torch.tensor(cell.lattice, dtype=torch.float64)
            graph.neighbor_image = graph.neighbor_image.detach().to(torch.float64)
        return graph

    def _compute(self, prepared: list[Any]) -> np.ndarray:
        import torch

        model = self._model()
        device = str(resolve_device(self.device))
        out = np.empty((len(prepared), CHGNET_FEATURES))
        with torch.no_grad():  # features only: no forces or stresses, hence no autograd graph
            for start in range(0, len(prepared), self.batch_size):
                graphs = [g.to(device) for g in prepared[start : start + self.batch_size]]
                prediction = model(graphs, task='e', return_crystal_feas=True)
                out[start : start + len(graphs)] = prediction['crystal_fea'].detach().cpu().double().numpy()
        return out

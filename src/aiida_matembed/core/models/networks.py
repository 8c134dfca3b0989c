"""The torch modules: a CGCNN crystal encoder, a 1D-CNN XRD encoder and the networks built from them.

- :class:`CrystalEncoder`: CGCNN (Xie and Grossman, Phys. Rev. Lett. 120, 145301 (2018)) on the
  ``matembed.crystal_graph`` graphs: atom features -> ``hidden`` channels, ``layers`` gated graph
  convolutions (``torch_geometric.nn.CGConv``, residual, batch-normalised), mean and max pooling over the
  atoms of each crystal, then an MLP to ``out_dim``.
- :class:`XrdEncoder`: a 1D CNN on a gridded powder pattern (Suzuki et al., Sci. Rep. 12, 13960 (2022);
  Lee et al., 2022): convolution, batch norm, GELU and max pooling blocks, an adaptive pooling to a
  fixed number of positions (so the 2θ position of each feature is kept, unlike a global pooling),
  then an MLP to ``out_dim``. With ``axis='log_q'`` the pattern is first resampled onto a uniform grid of
  ``ln Q`` (``Q = 4π sin θ / λ``): a change of the lattice scale then moves every peak by the same amount,
  which the convolutions see as a translation, and the ratios of peak positions that decide the crystal
  system become fixed distances (the idea behind d-spacing ratio indexing, e.g. Visser's ITO method).
- :class:`CmmlNet`: the two encoders of cross-modal metric learning (CMML), embeddings L2-normalised.
- :class:`SymmetryNet`: XRD encoder with a crystal-system (7) and a space-group (230) head.
- :class:`XrdVaeNet`: variational autoencoder of patterns with a low-dimensional latent space.
- :class:`PropertyNet`: either encoder with a regression head for one or more properties.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ('CRYSTAL_SYSTEMS', 'CmmlNet', 'CrystalEncoder', 'PropertyNet', 'SymmetryNet', 'XrdEncoder', 'XrdVaeNet',
           'crystal_system_of')  # fmt: skip

CRYSTAL_SYSTEMS = ('triclinic', 'monoclinic', 'orthorhombic', 'tetragonal', 'trigonal', 'hexagonal', 'cubic')
"""The seven crystal systems, in the order of increasing space-group number."""

_FIRST_GROUP = (1, 3, 16, 75, 143, 168, 195)


def crystal_system_of(space_group: int) -> str:
    """Crystal system of an international space-group number (1-230)."""
    if not 1 <= int(space_group) <= 230:
        raise ValueError(f'space-group number must be in 1..230, got {space_group!r}')
    index = sum(int(space_group) >= first for first in _FIRST_GROUP) - 1
    return CRYSTAL_SYSTEMS[index]


def space_group_to_system_index() -> torch.Tensor:
    """``(230,)`` crystal-system index of each space group 1..230 (position ``g - 1``)."""
    return torch.tensor([CRYSTAL_SYSTEMS.index(crystal_system_of(g)) for g in range(1, 231)])


class CrystalEncoder(nn.Module):
    """CGCNN encoder of a batch of crystal graphs (torch-geometric ``Batch``) -> ``(B, out_dim)``."""

    def __init__(
        self, atom_dim: int, edge_dim: int, hidden: int = 64, layers: int = 3, out_dim: int = 256, dropout: float = 0.0
    ) -> None:
        from torch_geometric.nn import CGConv

        super().__init__()
        self.embed = nn.Linear(atom_dim, hidden)
        self.convs = nn.ModuleList([CGConv(hidden, dim=edge_dim, aggr='mean', batch_norm=True) for _ in range(layers)])
        self.head = nn.Sequential(
            nn.Linear(2 * hidden, 2 * hidden), nn.SiLU(), nn.Dropout(dropout), nn.Linear(2 * hidden, out_dim)
        )

    def forward(self, batch: Any) -> torch.Tensor:
        from torch_geometric.utils import scatter

        x = self.embed(batch.x)
        if self.training or torch.is_grad_enabled():
            for conv in self.convs:
                x = nn.functional.silu(conv(x, batch.edge_index, batch.edge_attr))
        else:
            x = self._convolve_inference(x, batch.edge_index, batch.edge_attr)
        size = int(batch.num_graphs)
        pooled = torch.cat(
            [
                scatter(x, batch.batch, 0, dim_size=size, reduce='mean'),
                scatter(x, batch.batch, 0, dim_size=size, reduce='max'),
            ],
            dim=1,
        )
        return self.head(pooled)

    def _convolve_inference(self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor) -> torch.Tensor:
        """The ``CGConv`` layers without autograd, regrouped so the big products are per atom, not per edge.

        ``CGConv`` applies ``W [x_i, x_j, e_ij] + b`` to every edge (``2H + E`` inputs). Splitting ``W`` by
        columns gives ``W_i x_i + W_j x_j + W_e e_ij + b``: the first two terms are computed once per atom
        and gathered, the last once per edge with only ``E`` inputs, for all layers in one product. Same
        arithmetic up to float round-off (tested against ``CGConv``); on the CPU here 1.3-2.5x faster at
        the default 256 structures per pass, ~1.1x at 2,000 (memory-bound), see ``benchmarks/bench_embed.py``.
        """
        source, target = edge_index[0], edge_index[1]
        n_atoms, hidden = x.shape
        convs: list[Any] = list(self.convs)
        weights = [torch.cat([conv.lin_f.weight, conv.lin_s.weight], 0) for conv in convs]  # (2H, 2H + E)
        biases = torch.cat([torch.cat([conv.lin_f.bias, conv.lin_s.bias]) for conv in convs])
        edge_terms = torch.addmm(biases, edge_attr, torch.cat([w[:, 2 * hidden :] for w in weights], 0).T)
        # the graphs of matembed.crystal_graph usually give every atom the same number K of neighbours, listed
        # atom by atom: then the mean over incoming edges is a reshape and a mean, with no scatter
        n_edges = target.shape[0]
        k = n_edges // max(n_atoms, 1)
        dense = n_atoms > 0 and k > 0 and k * n_atoms == n_edges
        if dense:
            expected = torch.arange(n_atoms, device=x.device).repeat_interleave(k)
            dense = bool(torch.equal(target, expected))
        if not dense:
            counts = torch.zeros(n_atoms, dtype=x.dtype, device=x.device)
            counts.index_add_(0, target, torch.ones_like(target, dtype=x.dtype))
            inverse = (1.0 / counts.clamp(min=1.0))[:, None]
        for layer, (conv, weight) in enumerate(zip(convs, weights, strict=True)):
            own = x @ weight[:, :hidden].T  # (N, 2H): the W_i x_i term of every edge into this atom
            neighbour = (x @ weight[:, hidden : 2 * hidden].T)[source]  # (n_edges, 2H): W_j x_j
            z = edge_terms[:, layer * 2 * hidden : (layer + 1) * 2 * hidden] + neighbour
            if dense:
                z = z.view(n_atoms, k, 2 * hidden) + own[:, None, :]
                out = (torch.sigmoid(z[..., :hidden]) * nn.functional.softplus(z[..., hidden:])).mean(dim=1)
            else:
                z = z + own[target]
                message = torch.sigmoid(z[:, :hidden]) * nn.functional.softplus(z[:, hidden:])
                out = torch.zeros_like(x).index_add_(0, target, message) * inverse
            if conv.bn is not None:
                out = conv.bn(out)
            x = nn.functional.silu(out + x)
        return x


def log_q_windows(
    n_points: int, start: float, step: float, wavelength: float, out_points: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Source grid points of each bin of a uniform ``ln Q`` grid spanning a uniform 2θ grid.

    The 2θ grid is ``start + i * step`` (degrees, ``n_points`` points); the ``ln Q`` grid has ``out_points``
    bins between the ``Q`` of its ends. Bin ``m`` takes the 2θ points inside its edges, and at least the two
    around its centre (where ``ln Q`` bins are finer than the 2θ steps, at low angles).

    :return: ``(index, mask)``, both ``(out_points, K)``: the 2θ indices of each bin and which are used.
    """
    import math

    if n_points < 2 or out_points < 2:
        raise ValueError(f'need at least 2 points on both grids, got {n_points} and {out_points}')
    end = start + (n_points - 1) * step
    if not 0 < start < end < 180 or wavelength <= 0:
        raise ValueError(f'need 0 < 2θ start < end < 180° and a wavelength > 0, got {start}, {end}, {wavelength}')

    def index_of(log_q: torch.Tensor) -> torch.Tensor:
        two_theta = 2 * torch.rad2deg(torch.asin((wavelength * torch.exp(log_q) / (4 * math.pi)).clamp(max=1.0)))
        return ((two_theta - start) / step).clamp(0, n_points - 1)

    q_low, q_high = (math.log(4 * math.pi * math.sin(math.radians(t / 2)) / wavelength) for t in (start, end))
    delta = (q_high - q_low) / (out_points - 1)
    centres = q_low + delta * torch.arange(out_points, dtype=torch.float64)
    low = torch.minimum(torch.ceil(index_of(centres - delta / 2)), torch.floor(index_of(centres)))
    high = torch.maximum(torch.floor(index_of(centres + delta / 2)), torch.ceil(index_of(centres)))
    width = int((high - low).max()) + 1
    index = low[:, None] + torch.arange(width, dtype=torch.float64)
    mask = index <= high[:, None]
    return index.clamp(max=n_points - 1).long(), mask


class XrdEncoder(nn.Module):
    """1D CNN encoder of ``(B, G)`` patterns (each divided by its maximum) -> ``(B, out_dim)``.

    :param n_points: number of grid points ``G`` (only used to check inputs).
    :param channels: output channels of the convolution blocks (each block halves the length).
    :param kernel: convolution kernel size (grid points).
    :param positions: length after the adaptive max pooling (the head sees ``channels[-1] * positions``).
    :param axis: ``'two_theta'`` (convolve the pattern as given) or ``'log_q'`` (first take the maximum of the
        pattern in each of ``axis_points`` bins of ``ln Q``; needs ``grid``, see :func:`log_q_windows`).
    :param grid: the input grid, ``{'start': degrees, 'step': degrees, 'wavelength': Å}``.
    """

    def __init__(
        self,
        n_points: int,
        channels: tuple[int, ...] = (16, 32, 64, 64, 128),
        kernel: int = 7,
        positions: int = 16,
        hidden: int = 512,
        out_dim: int = 256,
        dropout: float = 0.1,
        axis: str = 'two_theta',
        axis_points: int | None = None,
        grid: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.n_points = int(n_points)
        self.log_q = axis == 'log_q'
        if axis not in ('two_theta', 'log_q'):
            raise ValueError(f"axis must be 'two_theta' or 'log_q', got {axis!r}")
        if self.log_q:
            if grid is None:
                raise ValueError("axis='log_q' needs the input grid {'start', 'step', 'wavelength'}")
            index, mask = log_q_windows(self.n_points, out_points=int(axis_points or self.n_points), **grid)
            # derived from the architecture, so not part of the saved weights
            self.register_buffer('window_index', index, persistent=False)
            self.register_buffer('window_mask', mask, persistent=False)
        blocks: list[nn.Module] = []
        previous = 1
        for width in channels:
            blocks += [
                nn.Conv1d(previous, width, kernel, padding=kernel // 2, bias=False),
                nn.BatchNorm1d(width),
                nn.GELU(),
                nn.MaxPool1d(2),
            ]
            previous = width
        blocks.append(nn.AdaptiveMaxPool1d(positions))
        self.convs = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(previous * positions, hidden), nn.GELU(), nn.Dropout(dropout),
            nn.Linear(hidden, out_dim),
        )  # fmt: skip

    def forward(self, patterns: torch.Tensor) -> torch.Tensor:
        if patterns.ndim != 2 or patterns.shape[1] != self.n_points:
            raise ValueError(f'expected patterns of shape (N, {self.n_points}), got {tuple(patterns.shape)}')
        if self.log_q:
            index: torch.Tensor = self.window_index  # type: ignore[assignment]
            mask: torch.Tensor = self.window_mask  # type: ignore[assignment]
            windows = patterns[:, index]  # (B, M, K)
            patterns = torch.where(mask, windows, torch.finfo(windows.dtype).min).amax(dim=2)
        return self.head(self.convs(patterns.unsqueeze(1)))


class CmmlNet(nn.Module):
    """Crystal and XRD encoders mapping to one L2-normalised embedding space (Suzuki et al. 2022)."""

    def __init__(self, *, crystal: dict[str, Any], xrd: dict[str, Any], embedding_dim: int = 256) -> None:
        super().__init__()
        self.crystal = CrystalEncoder(**crystal, out_dim=embedding_dim)
        self.xrd = XrdEncoder(**xrd, out_dim=embedding_dim)
        self.log_scale = nn.Parameter(torch.tensor(2.6593))  # log(1 / 0.07), the CLIP initial temperature

    def embed_graphs(self, batch: Any) -> torch.Tensor:
        return nn.functional.normalize(self.crystal(batch), dim=1)

    def embed_patterns(self, patterns: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.xrd(patterns), dim=1)


class SymmetryNet(nn.Module):
    """XRD encoder with two heads: crystal system (7 logits) and space group (230 logits)."""

    def __init__(self, *, xrd: dict[str, Any], features: int = 256) -> None:
        super().__init__()
        self.xrd = XrdEncoder(**xrd, out_dim=features)
        self.system_head = nn.Sequential(nn.GELU(), nn.Linear(features, len(CRYSTAL_SYSTEMS)))
        self.group_head = nn.Sequential(nn.GELU(), nn.Linear(features, 230))

    def forward(self, patterns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.xrd(patterns)
        return self.system_head(h), self.group_head(h)


class XrdVaeNet(nn.Module):
    """Variational autoencoder of patterns (Kingma and Welling, 2014) with a ``latent_dim`` latent space.

    The decoder reconstructs the pattern max-pooled to ``n_points // pool`` points (peak positions and
    heights, not the exact line shapes). An optional crystal-system head on the latent mean (weight set
    in training) organises the map by symmetry.
    """

    def __init__(self, *, xrd: dict[str, Any], latent_dim: int = 2, pool: int = 4, decoder_hidden: int = 512) -> None:
        super().__init__()
        self.pool = int(pool)
        self.encoder = XrdEncoder(**xrd, out_dim=2 * latent_dim)
        self.latent_dim = int(latent_dim)
        self.target_points = int(xrd['n_points']) // self.pool
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, 128), nn.GELU(), nn.Linear(128, decoder_hidden), nn.GELU(),
            nn.Linear(decoder_hidden, self.target_points),
        )  # fmt: skip
        self.system_head = nn.Sequential(nn.Linear(latent_dim, 64), nn.GELU(), nn.Linear(64, len(CRYSTAL_SYSTEMS)))

    def encode(self, patterns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.encoder(patterns).chunk(2, dim=1)
        return mean, log_var.clamp(-10.0, 10.0)

    def target(self, patterns: torch.Tensor) -> torch.Tensor:
        """The reconstruction target: patterns max-pooled by ``pool``."""
        n = self.target_points * self.pool
        return nn.functional.max_pool1d(patterns[:, None, :n], self.pool)[:, 0]

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        return self.decoder(latent)  # logits of the pooled pattern (0..1 after a sigmoid)


class PropertyNet(nn.Module):
    """A crystal or XRD encoder with a regression head of ``n_targets`` outputs (standardised units)."""

    def __init__(self, *, encoder: str, n_targets: int = 1, crystal: dict[str, Any] | None = None,
                 xrd: dict[str, Any] | None = None, features: int = 128) -> None:  # fmt: skip
        super().__init__()
        if encoder not in ('crystal', 'xrd'):
            raise ValueError(f"encoder must be 'crystal' or 'xrd', got {encoder!r}")
        self.encoder_kind = encoder
        if encoder == 'crystal':
            if crystal is None:
                raise ValueError('a crystal-encoder property model needs the crystal settings')
            self.encoder: nn.Module = CrystalEncoder(**crystal, out_dim=features)
        else:
            if xrd is None:
                raise ValueError('an XRD-encoder property model needs the xrd settings')
            self.encoder = XrdEncoder(**xrd, out_dim=features)
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(features, n_targets))

    def forward(self, inputs: Any) -> torch.Tensor:
        return self.head(self.encoder(inputs))

"""Training of the learned models from a YAML configuration (``verdi data matembed train CONFIG.yaml``).

One configuration names the task (``cmml``, ``xrd_symmetry``, ``xrd_vae`` or ``property``), the data (a
``StructureSet`` ``.npz`` file or a seeded ``build_dataset`` recipe), the input settings (XRD grid,
crystal graph), the architecture and the optimisation. Training is seeded (same configuration, same
device -> same weights), reports validation metrics every epoch, stops early when the monitored metric
has not improved for ``patience`` epochs, keeps the best epoch's weights, uses bfloat16 autocast on
GPU when ``amp`` is on, and writes a safetensors checkpoint with its JSON model card.

Losses:

- ``cmml``: InfoNCE (symmetric cross-entropy of the scaled cosine similarities of the structures and
  the patterns of a batch; van den Oord et al. 2018, Radford et al. 2021) or the bidirectional triplet
  loss with the hardest in-batch negative and margin 1 of CMML (Suzuki et al. 2022), chosen by ``loss``;
- ``xrd_symmetry``: cross-entropy of the crystal system plus cross-entropy of the space group (Lee et
  al. 2022), on clean and augmented patterns (noise, background, zero shift, broadening, March-Dollase
  preferred orientation: :class:`~aiida_matembed.core.xrd.XrdAugmentation`);
- ``xrd_vae``: Bernoulli reconstruction of the pooled pattern + ``kl_weight`` x KL divergence, plus an
  optional crystal-system cross-entropy on the latent mean (``system_weight``);
- ``property``: mean squared error of standardised targets.

``training.resample`` (pattern-only tasks) replaces the augmented views of a share of the training rows every
epoch by patterns of freshly perturbed structures: a random strain and random atomic displacements that keep
each structure's space group (:mod:`aiida_matembed.core.datasets.perturb`). Keys: ``strain`` (default 0.03),
``displacement`` (Å, default 0.05), ``fraction`` of the training rows per epoch (default 1) and ``symprec``
(Å, default 1e-3). The clean view, used for validation, is never changed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from ..xrd.settings import XrdSettings
from .base import MODEL_KINDS, TrainedModel
from .checkpoint import ModelCard
from .inputs import GraphInput, model_xrd_settings, simulate_model_patterns, subset_graph_arrays
from .networks import CRYSTAL_SYSTEMS, crystal_system_of

__all__ = ('TASKS', 'TrainConfig', 'TrainResult', 'prepare_data', 'train')

TASKS = ('cmml', 'xrd_symmetry', 'xrd_vae', 'property')

_TRAINING_DEFAULTS: dict[str, Any] = {
    'epochs': 30,
    'batch_size': 128,
    'lr': 2e-3,
    'weight_decay': 1e-4,
    'patience': 8,
    'seed': 0,
    'device': 'auto',
    'amp': True,
    'grad_clip': 5.0,
    'max_steps_per_epoch': None,
    'loss': 'infonce',
    'margin': 1.0,
    'label_smoothing': 0.0,
    'kl_weight': 0.01,
    'system_weight': 1.0,
    'views': 1,
    'augment': None,
    'targets': None,
    'resample': None,
}
_RESAMPLE_KEYS = {'strain', 'displacement', 'symprec', 'fraction'}
_DATA_KEYS = {'train', 'build', 'val_fraction', 'max_structures', 'val_seed'}


@dataclass
class TrainConfig:
    """A training run (see the module docstring); load one with :meth:`from_yaml`.

    :param task: ``'cmml'``, ``'xrd_symmetry'``, ``'xrd_vae'`` or ``'property'``.
    :param name: the model's registered name, written to the card (e.g. ``'matembed.cmml'``).
    :param output: checkpoint path stem (``OUTPUT.safetensors`` and ``OUTPUT.json`` are written).
    :param data: ``train`` (a ``StructureSet`` ``.npz``) or ``build`` (keyword arguments of
        :func:`aiida_matembed.core.datasets.build_dataset`), ``val_fraction`` (default 0.1),
        ``max_structures``.
    :param inputs: ``xrd`` (:class:`~aiida_matembed.core.xrd.settings.XrdSettings` fields; defaults
        :data:`~aiida_matembed.core.xrd.settings.MODEL_XRD`) and ``graph`` (:class:`GraphInput` fields).
    :param model: architecture keyword arguments (see :mod:`.networks`).
    :param training: optimisation settings; defaults in ``_TRAINING_DEFAULTS``.
    """

    task: str
    name: str
    output: str
    data: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    description: str = ''
    version: str = '1'

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f'unknown task {self.task!r}; choose one of {", ".join(TASKS)}')
        if not isinstance(self.data, dict) or not ({'train', 'build'} & set(self.data)):
            raise ValueError("data needs 'train' (a StructureSet .npz file) or 'build' (build_dataset arguments)")
        unknown = set(self.data) - _DATA_KEYS
        if unknown:
            raise ValueError(f'unknown data keys {sorted(unknown)}; known: {sorted(_DATA_KEYS)}')
        unknown = set(self.training) - set(_TRAINING_DEFAULTS)
        if unknown:
            raise ValueError(f'unknown training keys {sorted(unknown)}; known: {sorted(_TRAINING_DEFAULTS)}')
        self.training = {**_TRAINING_DEFAULTS, **self.training}
        t = self.training
        for key in ('epochs', 'batch_size', 'patience', 'views'):
            value = t[key]
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f'training.{key} must be a positive integer, got {value!r}')
        if t['max_steps_per_epoch'] is not None and (
            not isinstance(t['max_steps_per_epoch'], int) or t['max_steps_per_epoch'] <= 0
        ):
            raise ValueError(
                f'training.max_steps_per_epoch must be a positive integer, got {t["max_steps_per_epoch"]!r}'
            )
        for key in ('lr', 'weight_decay', 'grad_clip', 'margin', 'kl_weight', 'system_weight', 'label_smoothing'):
            value = t[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f'training.{key} must be a number >= 0, got {value!r}')
        if t['lr'] <= 0:
            raise ValueError(f'training.lr must be > 0, got {t["lr"]!r}')
        if t['loss'] not in ('infonce', 'triplet'):
            raise ValueError(f"training.loss must be 'infonce' or 'triplet', got {t['loss']!r}")
        val = self.data.get('val_fraction', 0.1)
        if not isinstance(val, (int, float)) or not 0 < val < 1:
            raise ValueError(f'data.val_fraction must be in (0, 1), got {val!r}')
        if t['resample'] is not None:
            resample = t['resample']
            if not isinstance(resample, dict) or set(resample) - _RESAMPLE_KEYS:
                raise ValueError(
                    f'training.resample must be a mapping with keys from {sorted(_RESAMPLE_KEYS)}, got {resample!r}'
                )
            for key, value in resample.items():
                number = isinstance(value, (int, float)) and not isinstance(value, bool)
                if not number or not math.isfinite(value) or value < 0:
                    raise ValueError(f'training.resample.{key} must be a number >= 0, got {value!r}')
            if not 0 < resample.get('fraction', 1.0) <= 1:
                raise ValueError(f'training.resample.fraction must be in (0, 1], got {resample["fraction"]!r}')
            if self.needs_graphs or not self.needs_patterns:
                raise ValueError(
                    'training.resample perturbs the structures behind the patterns; it needs a task that reads '
                    'only XRD patterns (xrd_symmetry, xrd_vae or an xrd property head)'
                )
            if t['views'] < 2:
                raise ValueError('training.resample regenerates the augmented views: set training.views >= 2')
        if self.task == 'property' and not t['targets']:
            raise ValueError('a property task needs training.targets: the label columns to regress')
        self.xrd_input  # noqa: B018 (validates)
        self.graph_input  # noqa: B018

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read a configuration file; relative data and output paths are taken relative to it."""
        import yaml

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f'no configuration file {path}')
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ValueError(f'{path}: not valid YAML ({exc})') from None
        if not isinstance(raw, dict):
            raise ValueError(f'{path}: the configuration must be a mapping')
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f'{path}: unknown keys {unknown}; known: {sorted(known)}')
        missing = [key for key in ('task', 'name', 'output', 'data') if key not in raw]
        if missing:
            raise ValueError(f'{path}: missing keys {missing}')
        for key in ('output',):
            if not Path(raw[key]).is_absolute():
                raw[key] = str(path.parent / raw[key])
        data = dict(raw['data'] or {})
        if 'train' in data and not Path(data['train']).is_absolute():
            data['train'] = str(path.parent / data['train'])
        raw['data'] = data
        try:
            return cls(**raw)
        except TypeError as exc:
            raise ValueError(f'{path}: {exc}') from None

    @property
    def needs_graphs(self) -> bool:
        return self.task == 'cmml' or (self.task == 'property' and self.model.get('encoder', 'crystal') == 'crystal')

    @property
    def needs_patterns(self) -> bool:
        return self.task != 'property' or self.model.get('encoder', 'crystal') == 'xrd'

    @property
    def xrd_input(self) -> XrdSettings | None:
        return model_xrd_settings(self.inputs.get('xrd', {})) if self.needs_patterns else None

    @property
    def graph_input(self) -> GraphInput | None:
        return GraphInput.from_dict(self.inputs.get('graph', {})) if self.needs_graphs else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PreparedData:
    """Model inputs of a structure set (rows that failed either input are dropped)."""

    n: int
    labels: dict[str, np.ndarray]
    patterns: list[np.ndarray] | None
    """Views of the patterns: ``[clean, augmented 1, ...]``, each ``(n, G)`` float32."""
    graphs: Any
    data_info: dict[str, Any]
    failures: int
    structures: list[Any] | None = None
    """The kept structures, when ``training.resample`` perturbs them every epoch."""


def _load_structure_set(data: dict[str, Any]) -> Any:
    from ..datasets.store import StructureSet

    if 'train' in data:
        structure_set = StructureSet.load(data['train'])
    else:
        from ..datasets import build_dataset

        structure_set = build_dataset(**data['build'])
    limit = data.get('max_structures')
    if limit is not None and limit < len(structure_set):
        structure_set = structure_set.subset(np.arange(limit))
    return structure_set


def prepare_data(config: TrainConfig, structure_set: Any = None, log: Callable[[str], None] = print) -> PreparedData:
    """Build the graphs and (clean + augmented) patterns of the training structures."""
    from ..xrd import XrdAugmentation

    if structure_set is None:
        structure_set = _load_structure_set(config.data)
    structures = structure_set.structures()
    n = len(structures)
    good = np.ones(n, dtype=bool)
    graphs: Any = None
    patterns = None
    t0 = time.perf_counter()
    graph_input = config.graph_input
    if graph_input is not None:
        arrays, rows, _ = graph_input.arrays(structures, errors='record')
        good &= np.isin(np.arange(n), rows)
        position = np.full(n, -1)
        position[rows] = np.arange(len(rows))
        graphs = (arrays, position)
    xrd_input = config.xrd_input
    if xrd_input is not None:
        t = config.training
        augment = XrdAugmentation(**t['augment']) if t['augment'] else None
        views = [simulate_model_patterns(xrd_input, structures, errors='record')[0]]
        for view in range(1, t['views']):
            views.append(
                simulate_model_patterns(
                    xrd_input, structures, augment=augment, seed=t['seed'] * 1000 + view, errors='record'
                )[0]
            )
        for v in views:
            good &= ~np.isnan(v).any(axis=1)
        patterns = views
    keep = np.flatnonzero(good)
    log(f'prepared {len(keep)} of {n} structures in {time.perf_counter() - t0:.1f} s ({n - len(keep)} failed)')
    if graphs is not None:
        arrays, position = graphs
        graphs = subset_graph_arrays(arrays, position[keep])
    if patterns is not None:
        patterns = [np.ascontiguousarray(v[keep]) for v in patterns]
    labels = {key: np.asarray(value)[keep] for key, value in structure_set.labels.items()}
    info = {
        'n_structures': len(keep),
        'sha256': structure_set.sha256(),
        'metadata': structure_set.metadata,
        'sources': {
            str(k): int(v)
            for k, v in zip(*np.unique(labels.get('source', np.array([])), return_counts=True), strict=True)
        },
    }
    kept = [structures[k] for k in keep] if config.training['resample'] is not None else None
    return PreparedData(len(keep), labels, patterns, graphs, info, n - len(keep), kept)


_SOURCE_NAMES = {
    'aflow': 'decorated AFLOW prototypes from pymatgen',
    'pyriodic': 'decorated AFLOW prototypes from pyriodic-aflow',
    'synthetic': 'synthetic pyxtal crystals',
}


def describe_training_data(info: dict[str, Any]) -> str:
    """One sentence on what a model was trained on, written from the prepared data (never from the config).

    The card's description then cannot claim data the model never saw, e.g. ``'Training data: 10,000
    structures (training + validation split): 2,531 decorated AFLOW prototypes from pymatgen, 7,469 decorated
    AFLOW prototypes from pyriodic-aflow (held-out structure types excluded); no synthetic crystals; seed 0. No
    experimental data.'`` Claims about what is absent are made only when every source is a known one.
    """
    sources = info.get('sources') or {}
    parts = [f'{count:,} {_SOURCE_NAMES.get(name, repr(name))}' for name, count in sorted(sources.items())]
    metadata = info.get('metadata') or {}
    builds = metadata.get('parts') or [metadata]  # a joined set lists the metadata of its parts
    text = f'Training data: {info.get("n_structures", 0):,} structures (training + validation split)'
    text += ': ' + ', '.join(parts) if parts else ' of unlabelled origin'
    if builds and all(_excludes_heldout(build) for build in builds):
        text += ' (held-out structure types excluded)'
    all_known = bool(sources) and set(sources) <= set(_SOURCE_NAMES)
    if all_known and 'synthetic' not in sources:
        text += '; no synthetic crystals'
    seeds = sorted({int(build['seed']) for build in builds if 'seed' in build})
    if seeds:
        text += '; seed ' + ', '.join(map(str, seeds))
    return text + ('. No experimental data.' if all_known else '.')


def _excludes_heldout(build: dict[str, Any]) -> bool:
    """Whether a dataset build left out the held-out structure types.

    Decorations: ``split='train'``; synthetic crystals: candidates matching a held-out type were rejected.
    """
    parameters = build.get('parameters') or {}
    return parameters.get('split') == 'train' or int(parameters.get('n_excluded_keys') or 0) > 0


@dataclass
class TrainResult:
    """Outcome of :func:`train`."""

    model: TrainedModel
    checkpoint: Path
    history: list[dict[str, float]]
    best_epoch: int


def _architecture(config: TrainConfig) -> dict[str, Any]:
    arch: dict[str, Any] = {}
    model = dict(config.model)
    if config.xrd_input is not None:
        arch['xrd'] = {'n_points': config.xrd_input.n_points, **model.pop('xrd', {})}
        if arch['xrd'].get('axis') == 'log_q':
            xrd_input = config.xrd_input
            arch['xrd']['grid'] = {
                'start': xrd_input.two_theta_range[0],
                'step': float(xrd_input.step),
                'wavelength': xrd_input.wavelength_angstrom,
            }
    if config.graph_input is not None:
        arch['crystal'] = {
            'atom_dim': config.graph_input.atom_dim,
            'edge_dim': config.graph_input.edge_dim,
            **model.pop('crystal', {}),
        }
    if config.task == 'property':
        arch['n_targets'] = len(config.training['targets'])
        arch.setdefault('encoder', model.pop('encoder', 'crystal'))
    arch.update(model)
    return arch


def _system_index(labels: dict[str, np.ndarray]) -> np.ndarray:
    if 'crystal_system' in labels:
        return np.array([CRYSTAL_SYSTEMS.index(str(s)) for s in labels['crystal_system']])
    return np.array([CRYSTAL_SYSTEMS.index(crystal_system_of(int(g))) for g in labels['space_group']])


class _Task:
    """Batches, loss and validation metrics of one task."""

    monitor = 'val_loss'
    maximise = False

    def __init__(self, config: TrainConfig, data: PreparedData, net: nn.Module, device: torch.device) -> None:
        self.config, self.data, self.net, self.device = config, data, net, device
        self.t = config.training
        self.rng = np.random.default_rng(self.t['seed'])

    def patterns(self, rows: np.ndarray, augmented: bool) -> torch.Tensor:
        assert self.data.patterns is not None
        views = self.data.patterns
        if augmented and len(views) > 1:
            choice = self.rng.integers(0, len(views), len(rows))
            array = np.stack([views[c][r] for c, r in zip(choice, rows, strict=True)])
        else:
            array = views[0][rows]
        return torch.from_numpy(array).to(self.device)

    def resample(self, rows: np.ndarray, epoch: int) -> str:
        """Replace the augmented views of ``rows`` by patterns of freshly perturbed structures (``training.resample``).

        Each structure gets a random strain and random atomic displacements that keep its space group
        (:mod:`aiida_matembed.core.datasets.perturb`), then the configured pattern augmentations; rows whose
        perturbed structure fails (e.g. atoms pushed too close) keep their previous pattern. Returns a log line.
        """
        from ..datasets.perturb import perturb_structures, symmetries_of
        from ..xrd import XrdAugmentation

        options = self.t['resample']
        assert options is not None and self.data.structures is not None and self.data.patterns is not None
        xrd_input = self.config.xrd_input
        assert xrd_input is not None
        started = time.perf_counter()
        if not hasattr(self, '_symmetries'):
            self._symmetries = symmetries_of(self.data.structures, symprec=options.get('symprec', 1e-3))
        augment = XrdAugmentation(**self.t['augment']) if self.t['augment'] else None
        rng = np.random.default_rng([self.t['seed'], epoch])
        fraction = options.get('fraction', 1.0)
        if fraction < 1:  # a random share of the rows each epoch
            rows = np.sort(rng.choice(rows, max(1, round(fraction * len(rows))), replace=False))
        originals = [self.data.structures[r] for r in rows]
        replaced = 0
        for view in range(1, len(self.data.patterns)):
            perturbed = perturb_structures(
                originals, [self._symmetries[r] for r in rows], rng,
                strain=options.get('strain', 0.03), displacement=options.get('displacement', 0.05),
            )  # fmt: skip
            seed = (self.t['seed'] * 1000 + epoch) * 100 + view
            profiles, _ = simulate_model_patterns(xrd_input, perturbed, augment=augment, seed=seed, errors='record')
            good = ~np.isnan(profiles).any(axis=1)
            self.data.patterns[view][rows[good]] = profiles[good]
            replaced += int(good.sum())
        fixed = sum(s is None for s in self._symmetries)
        return (
            f'resampled {replaced} patterns of perturbed structures in {time.perf_counter() - started:.1f} s'
            f' ({fixed} structures without symmetry operations kept as they are)'
        )

    def graphs(self, rows: np.ndarray) -> Any:
        assert self.config.graph_input is not None
        return self.config.graph_input.batch(self.data.graphs, rows).to(self.device)

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        raise NotImplementedError

    def validate(self, rows: np.ndarray) -> dict[str, float]:
        raise NotImplementedError


class _CmmlTask(_Task):
    monitor = 'val_top1'
    maximise = True
    net: Any

    def _pair_loss(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        similarity = g @ x.T
        target = torch.arange(len(g), device=g.device)
        if self.t['loss'] == 'infonce':
            logits = similarity * self.net.log_scale.exp().clamp(max=100.0)
            return 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))
        # bidirectional triplet loss, hardest in-batch negative, Euclidean distances of unit vectors
        distance = (2.0 - 2.0 * similarity).clamp(min=0.0).sqrt()
        positive = distance.diagonal()
        masked = distance + torch.eye(len(g), device=g.device) * 1e6
        margin = self.t['margin']
        loss_g = (positive - masked.min(dim=1).values + margin).clamp(min=0.0)
        loss_x = (positive - masked.min(dim=0).values + margin).clamp(min=0.0)
        return (loss_g + loss_x).mean()

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        g = self.net.embed_graphs(self.graphs(rows))
        x = self.net.embed_patterns(self.patterns(rows, augmented=True))
        return self._pair_loss(g.float(), x.float())

    def validate(self, rows: np.ndarray) -> dict[str, float]:
        gs, xs = [], []
        for chunk in np.array_split(rows, max(1, len(rows) // 512)):
            gs.append(self.net.embed_graphs(self.graphs(chunk)).float())
            xs.append(self.net.embed_patterns(self.patterns(chunk, augmented=False)).float())
        g, x = torch.cat(gs), torch.cat(xs)
        similarity = x @ g.T  # XRD query -> structure candidates
        rank = (similarity > similarity.diagonal()[:, None]).sum(dim=1)
        n = min(len(rows), 1024)
        return {
            'val_loss': float(self._pair_loss(g[:n], x[:n])),
            'val_top1': float((rank < 1).float().mean()),
            'val_top5': float((rank < 5).float().mean()),
        }


class _SymmetryTask(_Task):
    monitor = 'val_space_group_acc'
    maximise = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.system = torch.as_tensor(_system_index(self.data.labels))
        self.group = torch.as_tensor(np.asarray(self.data.labels['space_group'], dtype=np.int64) - 1)

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        system, group = self.net(self.patterns(rows, augmented=True))
        smoothing = self.t['label_smoothing']
        idx = torch.as_tensor(rows)
        return nn.functional.cross_entropy(
            system.float(), self.system[idx].to(self.device), label_smoothing=smoothing
        ) + nn.functional.cross_entropy(group.float(), self.group[idx].to(self.device), label_smoothing=smoothing)

    def validate(self, rows: np.ndarray) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, augmented in (('', False), ('aug_', True)):
            systems, groups = [], []
            for chunk in np.array_split(rows, max(1, len(rows) // 512)):
                s, g = self.net(self.patterns(chunk, augmented=augmented))
                systems.append(s.float())
                groups.append(g.float())
            s, g = torch.cat(systems).cpu(), torch.cat(groups).cpu()
            idx = torch.as_tensor(rows)
            top5 = g.topk(5, dim=1).indices
            if not name:
                out['val_loss'] = float(
                    nn.functional.cross_entropy(s, self.system[idx]) + nn.functional.cross_entropy(g, self.group[idx])
                )
            out[f'val_{name}crystal_system_acc'] = float((s.argmax(1) == self.system[idx]).float().mean())
            out[f'val_{name}space_group_acc'] = float((g.argmax(1) == self.group[idx]).float().mean())
            out[f'val_{name}space_group_top5'] = float((top5 == self.group[idx][:, None]).any(1).float().mean())
            if self.data.patterns is not None and len(self.data.patterns) == 1:
                break
        return out


def knn_accuracy(latent: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out ``k``-nearest-neighbour accuracy (majority vote, Euclidean) of ``labels`` in ``latent``."""
    x = torch.as_tensor(np.asarray(latent, dtype=np.float32))
    y = torch.as_tensor(np.asarray(labels))
    if len(x) <= k:
        raise ValueError(f'need more than k={k} points, got {len(x)}')
    distance = torch.cdist(x, x)
    distance.fill_diagonal_(math.inf)
    neighbours = y[distance.topk(k, largest=False).indices]
    votes = torch.nn.functional.one_hot(neighbours, int(y.max()) + 1).sum(dim=1)
    return float((votes.argmax(dim=1) == y).float().mean())


class _VaeTask(_Task):
    net: Any
    # selected on what the map is for: by validation loss, the first VAE was kept at epoch 2, where the KL term
    # had all but collapsed the latent (KL 0.06 nats) and 5-NN crystal-system accuracy was lowest (0.25 vs 0.37)
    monitor = 'val_knn5_crystal_system_acc'
    maximise = True

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.system = torch.as_tensor(_system_index(self.data.labels))

    def _terms(
        self, rows: np.ndarray, augmented: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.patterns(rows, augmented)
        mean, log_var = self.net.encode(x)
        mean, log_var = mean.float(), log_var.float()
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp() if self.net.training else mean
        logits = self.net.decode(z).float()
        target = self.net.target(x.float())
        reconstruction = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction='none').sum(1).mean()
        kl = (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)).mean()
        system = nn.functional.cross_entropy(
            self.net.system_head(mean), self.system[torch.as_tensor(rows)].to(self.device)
        )
        return reconstruction, kl, system, mean

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        reconstruction, kl, system, _ = self._terms(rows, augmented=True)
        return reconstruction / self.net.target_points + self.t['kl_weight'] * kl + self.t['system_weight'] * system

    def validate(self, rows: np.ndarray) -> dict[str, float]:
        terms = [self._terms(chunk, augmented=False) for chunk in np.array_split(rows, max(1, len(rows) // 512))]
        reconstruction = float(torch.stack([t[0] for t in terms]).mean()) / self.net.target_points
        kl = float(torch.stack([t[1] for t in terms]).mean())
        latent = torch.cat([t[3] for t in terms]).cpu().numpy()
        return {
            'val_loss': reconstruction + self.t['kl_weight'] * kl,
            'val_reconstruction': reconstruction,
            'val_kl': kl,
            'val_knn5_crystal_system_acc': knn_accuracy(latent, self.system[torch.as_tensor(rows)].numpy()),
        }


class _PropertyTask(_Task):
    net: Any

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        targets = self.t['targets']
        missing = [t for t in targets if t not in self.data.labels]
        if missing:
            raise ValueError(
                f'property targets {missing} are not label columns of the data ({sorted(self.data.labels)})'
            )
        y = np.stack([np.asarray(self.data.labels[t], dtype=np.float64) for t in targets], axis=1)
        if not np.isfinite(y).all():
            raise ValueError('property targets contain NaN or infinite values; drop those structures first')
        self.mean, self.std = y.mean(axis=0), y.std(axis=0) + 1e-12
        self.y = torch.as_tensor(((y - self.mean) / self.std).astype(np.float32))

    def inputs(self, rows: np.ndarray, augmented: bool) -> Any:
        if self.net.encoder_kind == 'crystal':
            return self.graphs(rows)
        return self.patterns(rows, augmented)

    def loss(self, rows: np.ndarray) -> torch.Tensor:
        prediction = self.net(self.inputs(rows, augmented=True)).float()
        return nn.functional.mse_loss(prediction, self.y[torch.as_tensor(rows)].to(self.device))

    def validate(self, rows: np.ndarray) -> dict[str, float]:
        prediction = torch.cat(
            [
                self.net(self.inputs(c, augmented=False)).float().cpu()
                for c in np.array_split(rows, max(1, len(rows) // 512))
            ]
        )
        y = self.y[torch.as_tensor(rows)]
        mae = ((prediction - y).abs().mean(0).numpy() * self.std).tolist()
        out = {'val_loss': float(nn.functional.mse_loss(prediction, y))}
        for target, value in zip(self.t['targets'], mae, strict=True):
            out[f'val_mae_{target}'] = float(value)
        return out


_TASK_CLASSES: dict[str, type[_Task]] = {
    'cmml': _CmmlTask,
    'xrd_symmetry': _SymmetryTask,
    'xrd_vae': _VaeTask,
    'property': _PropertyTask,
}


def train(
    config: TrainConfig,
    *,
    structure_set: Any = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train the model of ``config`` and write its checkpoint (weights + card).

    :param structure_set: use this ``StructureSet`` instead of the one named in ``config.data``.
    :param progress: show a progress bar per epoch.
    :param log: receives one line per epoch with the validation metrics.
    """
    from tqdm.auto import tqdm

    from ... import __version__

    t = config.training
    torch.manual_seed(t['seed'])
    device = torch.device(resolve_device(t['device']))
    data = prepare_data(config, structure_set, log=log)
    min_rows = 10
    if data.n < min_rows:
        raise ValueError(f'only {data.n} usable structures: need at least {min_rows} to train and validate')
    rng = np.random.default_rng(config.data.get('val_seed', 12345))
    order = rng.permutation(data.n)
    n_val = max(2, round(config.data.get('val_fraction', 0.1) * data.n))
    val_rows, train_rows = np.sort(order[:n_val]), order[n_val:]

    cls = MODEL_KINDS[config.task]
    architecture = _architecture(config)
    net = cls.build_network(architecture).to(device)
    task = _TASK_CLASSES[config.task](config, data, net, device)
    optimiser = torch.optim.AdamW(net.parameters(), lr=t['lr'], weight_decay=t['weight_decay'])
    batch_size = min(t['batch_size'], len(train_rows))
    steps = len(train_rows) // batch_size
    if t['max_steps_per_epoch']:
        steps = min(steps, t['max_steps_per_epoch'])
    steps = max(steps, 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=t['lr'], total_steps=steps * t['epochs'], pct_start=0.1
    )
    use_amp = bool(t['amp']) and device.type == 'cuda'
    history: list[dict[str, float]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    shuffle = np.random.default_rng(t['seed'])
    started = time.perf_counter()
    for epoch in range(1, t['epochs'] + 1):
        if t['resample'] is not None and epoch > 1:  # epoch 1 trains on the views prepare_data made
            log(task.resample(train_rows, epoch))
        net.train()
        perm = shuffle.permutation(train_rows)
        losses = []
        bar = tqdm(range(steps), desc=f'{config.name} epoch {epoch}/{t["epochs"]}', disable=not progress, leave=False)
        for step in bar:
            rows = perm[step * batch_size : (step + 1) * batch_size]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                loss = task.loss(rows)
            if not torch.isfinite(loss):
                raise FloatingPointError(f'non-finite training loss at epoch {epoch}, step {step}; lower training.lr')
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if t['grad_clip']:
                nn.utils.clip_grad_norm_(net.parameters(), t['grad_clip'])
            optimiser.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f'{losses[-1]:.4f}')
        net.eval()
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            metrics = task.validate(val_rows)
        record = {'epoch': epoch, 'train_loss': float(np.mean(losses)), **metrics,
                  'seconds': round(time.perf_counter() - started, 2)}  # fmt: skip
        history.append(record)
        log(' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in record.items()))
        score = metrics[task.monitor] * (-1 if task.maximise else 1)
        if best is None or score < best[0]:
            best = (score, epoch, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
        elif epoch - best[1] >= t['patience']:
            log(f'early stop: {task.monitor} has not improved for {t["patience"]} epochs (best epoch {best[1]})')
            break
    assert best is not None
    net.load_state_dict(best[2])
    best_metrics = {k: v for k, v in history[best[1] - 1].items() if k.startswith('val_')}
    training = {
        **{k: v for k, v in t.items() if k != 'device'},
        'device': device.type,
        'epochs_run': len(history),
        'best_epoch': best[1],
        'train_structures': len(train_rows),
        'val_structures': len(val_rows),
        'history': history,
    }
    if config.task == 'property':
        prop_task = task
        assert isinstance(prop_task, _PropertyTask)
        training['target_mean'] = prop_task.mean.tolist()
        training['target_std'] = prop_task.std.tolist()
    inputs: dict[str, Any] = {}
    if config.xrd_input is not None:
        inputs['xrd'] = config.xrd_input.as_dict()
    if config.graph_input is not None:
        inputs['graph'] = config.graph_input.as_dict()
    card = ModelCard(
        name=config.name,
        kind=config.task,
        architecture=architecture,
        inputs=inputs,
        training=training,
        data={**data.data_info, 'config': {k: v for k, v in config.data.items() if k != 'train'}},
        metrics={'validation': best_metrics},
        description=f'{config.description.strip()} {describe_training_data(data.data_info)}'.strip(),
        version=str(config.version),
        package_version=__version__,
    )
    model = cls(card, net.cpu(), device='cpu')
    weights, _ = model.save(config.output)
    log(f'wrote {weights} (best epoch {best[1]}: {task.monitor}={history[best[1] - 1][task.monitor]:.4g})')
    return TrainResult(model, weights, history, best[1])


def main(argv: list[str] | None = None) -> int:
    """``python -m aiida_matembed.core.models.training CONFIG.yaml [--data SET.npz] [--output STEM] [--epochs N]``.

    The same as ``verdi data matembed train`` without needing an AiiDA profile (used by the retraining script).
    """
    import argparse

    parser = argparse.ArgumentParser(description='Train a model from a YAML configuration.')
    parser.add_argument('config', type=Path)
    parser.add_argument('--data', type=Path, help='StructureSet .npz to train on (overrides the config data)')
    parser.add_argument('--output', type=Path, help='checkpoint stem (overrides the config)')
    parser.add_argument('--epochs', type=int)
    parser.add_argument('--device', choices=['auto', 'cpu', 'cuda'])
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    config = TrainConfig.from_yaml(args.config)
    if args.data is not None:
        config.data = {**{k: v for k, v in config.data.items() if k not in ('train', 'build')}, 'train': str(args.data)}
    if args.output is not None:
        config.output = str(args.output)
    overrides = {'epochs': args.epochs, 'device': args.device}
    config.training.update({k: v for k, v in overrides.items() if v is not None})
    config = TrainConfig(**config.as_dict())
    train(config, progress=not args.no_progress)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

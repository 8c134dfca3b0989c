"""``matembed.train_property`` and ``matembed.predict``: property models learned from DFT labels in the graph.

Provenance of a trained model::

    DFT process --output_structure--> StructureData --featurize--> FeaturesData --+
    DFT process --output_parameters / output_trajectory / output_band------------+--> train_property --> ModelData

The calcfunction :func:`train_property` reads the labels itself from the DFT output nodes it takes as inputs
(namespace ``dft``, one sub-namespace per row) and the vectors from the ``FeaturesData`` inputs (namespace
``features``), so the model node's creator names everything it learned from. Its card holds the K-fold
cross-validated MAE next to the mean predictor's (:mod:`aiida_matembed.core.models.regressor`).

:func:`predict` runs a model on the vectors of candidate structures and stores the prediction and its standard
deviation as one ``FeaturesData`` (columns ``TARGET`` and ``TARGET_std``) whose creator has the model, the
structures and the vectors as inputs. Vectors of another representation (or version or options) than the model
was trained on are refused.

The launchers :func:`train_property_model` and :func:`predict_property` take Groups (of structures and / or DFT
processes of any plugin) or pks, compute the vectors that are missing, and run the calcfunctions.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from ..data.features import FeaturesData
from ..data.model import ModelData
from ..dft.processes import DFT_COLUMNS, dft_labels, group_members, read_dft_records
from ..query import vectors_by_uuid
from .batch import row_key, structures_namespace
from .bulk_links import link_inputs_in_bulk

__all__ = (
    'PredictionResult',
    'TrainResult',
    'feature_source',
    'predict',
    'predict_property',
    'train_property',
    'train_property_model',
)


def _check_same_source(nodes: Sequence[FeaturesData]) -> dict[str, Any]:
    sources = {(n.representation, n.representation_version, n.base.attributes.get('params_hash')) for n in nodes}
    if len(sources) != 1:
        raise ValueError(f'the features inputs mix {len(sources)} sources (representation, version, options)')
    return feature_source(nodes[0])


def feature_source(node: FeaturesData) -> dict[str, Any]:
    """The source a ``FeaturesData`` was made with: representation (or model) name, version, options, hash."""
    return {
        'representation': node.representation,
        'version': node.representation_version,
        'params': node.params,
        'params_hash': node.base.attributes.get('params_hash'),
    }


def _model_checkpoint(model: Any) -> tuple[bytes, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        weights, _ = model.save(Path(tmp) / 'model')
        return weights.read_bytes(), model.card


@calcfunction
def train_property(parameters: orm.Dict, **kwargs: Any) -> dict[str, orm.Data]:
    """Train a Gaussian-process model of one DFT label on stored vectors.

    :param parameters: ``target`` (one of :data:`~aiida_matembed.dft.processes.DFT_COLUMNS`), ``name`` (of the
        model), ``folds`` (K of the cross-validation), ``seed``.
    :param kwargs: namespaces ``structures`` (row ``r`` -> the structure a DFT process stands for), ``dft`` (row
        ``r`` -> that process's output nodes by link label) and ``features`` (FeaturesData holding the vectors).
    :returns: ``model`` (:class:`~aiida_matembed.data.ModelData`), ``metrics`` (Dict: the card's metrics, rows
        used, out-of-fold predictions) and, if rows were left out, ``skipped`` (List of ``{uuid, reason}``).
    """
    from ..core.models.regressor import train_regressor

    params = parameters.get_dict()
    target = params['target']
    structures = structures_namespace({'structures': kwargs.get('structures', {})})
    keys = sorted(kwargs.get('structures', {}))
    dft = kwargs.get('dft', {})
    feature_nodes = list(kwargs.get('features', {}).values())
    if not feature_nodes:
        raise ValueError('no features inputs')
    source = _check_same_source(feature_nodes)
    vectors = vectors_by_uuid(feature_nodes)
    rows, targets, used, skipped = [], [], [], []
    for key, structure in zip(keys, structures, strict=True):
        value = dft_labels(dict(dft.get(key, {})), structure)[target]
        if structure.uuid not in vectors:
            skipped.append(
                {'uuid': structure.uuid, 'pk': structure.pk, 'reason': f'no {source["representation"]} vector'}
            )
        elif not np.isfinite(value):
            skipped.append({'uuid': structure.uuid, 'pk': structure.pk, 'reason': f'the DFT outputs hold no {target}'})
        else:
            rows.append(vectors[structure.uuid])
            targets.append(value)
            used.append(structure.uuid)
    if len(rows) < 2:
        raise ValueError(f'only {len(rows)} structure(s) have both a vector and a {target} label; need >= 2')
    model, validation = train_regressor(
        np.stack(rows),
        np.array(targets),
        name=params['name'],
        target=target,
        source=source,
        data={'builder': 'matembed.train_property', 'target': target, 'structures': used},
        folds=int(params.get('folds', 5)),
        seed=int(params.get('seed', 0)),
    )
    weights, card = _model_checkpoint(model)
    node = ModelData(weights, card)
    node.label = card.name
    node.description = card.description
    outputs: dict[str, orm.Data] = {
        'model': node,
        'metrics': orm.Dict(
            {
                **card.metrics,
                'target': target,
                'rows': used,
                'targets': [float(v) for v in targets],
                'cv_predictions': validation.predictions.tolist(),
            }
        ),
    }
    if skipped:
        outputs['skipped'] = orm.List(skipped)
    return outputs


@calcfunction
def predict(model: ModelData, **kwargs: Any) -> dict[str, orm.Data]:
    """Predict a property model's target, with its standard deviation, for the structures in ``structures``.

    :param model: a ``matembed.model`` of kind ``regressor``.
    :param kwargs: namespaces ``structures`` (rows in sorted-key order) and ``features`` (the vectors, of the
        source the model was trained on).
    :returns: ``predictions`` (FeaturesData ``(N, 2)``: target and its standard deviation; rows without a vector
        are NaN and listed as failures) and ``failures`` if any.
    :raises ValueError: for vectors of another source than the model's.
    """
    regressor = model.load_model(device='cpu')
    if getattr(regressor, 'kind', None) != 'regressor':
        raise ValueError(f'{model} is a {regressor.card.kind} model, not a property model trained on vectors')
    structures = structures_namespace({'structures': kwargs.get('structures', {})})
    feature_nodes = list(kwargs.get('features', {}).values())
    wanted = regressor.source  # type: ignore[attr-defined]
    failures: list[dict[str, Any]] = []
    vectors: dict[str, np.ndarray] = {}
    if feature_nodes:
        got = _check_same_source(feature_nodes)
        if (got['representation'], got['version'], got['params_hash']) != (
            wanted['representation'],
            wanted['version'],
            wanted['params_hash'],
        ):
            raise ValueError(
                f'{model.name} was trained on {wanted["representation"]} (version {wanted["version"]}, options '
                f'{wanted["params"]}), not on {got["representation"]} (version {got["version"]}, options '
                f'{got["params"]})'
            )
        vectors = vectors_by_uuid(feature_nodes)
    width = int(regressor.network.n_inputs)  # type: ignore[arg-type]
    matrix = np.full((len(structures), width), np.nan)
    for row, structure in enumerate(structures):
        if structure.uuid in vectors:
            matrix[row] = vectors[structure.uuid]
    mean, std = regressor.predict_features(matrix)  # type: ignore[attr-defined]
    for row, structure in enumerate(structures):
        if not np.isfinite(mean[row]):
            reason = 'no vector' if structure.uuid not in vectors else 'a vector with non-finite values'
            failures.append(
                {
                    'index': row,
                    'uuid': structure.uuid,
                    'pk': structure.pk,
                    'error_type': 'MissingFeatures',
                    'message': f'{reason} of {wanted["representation"]}',
                }
            )
    target = regressor.targets[0]  # type: ignore[attr-defined]
    version = str(model.base.attributes.get('version'))
    outputs: dict[str, orm.Data] = {
        'predictions': FeaturesData(
            np.stack([mean, std], axis=1),
            labels=[target, f'{target}_std'],
            representation=model.name,
            version=int(version) if version.isdigit() else 0,
            params={'model': model.name, 'model_sha256': model.sha256, 'modality': 'features'},
            rows=[s.uuid for s in structures],
            failures=failures,
        )
    }
    if failures:
        outputs['failures'] = orm.List(failures)
    return outputs


link_inputs_in_bulk(train_property)  # thousands of structures and DFT outputs as inputs: linear-time linking
link_inputs_in_bulk(predict)


# ------------------------------------------------------------------------------------------------- launchers
def _selection(source: orm.Group | str | Sequence[int]) -> dict[str, Any]:
    if isinstance(source, orm.Group):
        return {'group': source}
    if isinstance(source, str):
        return {'group': orm.load_group(source)}
    return {'pks': list(source)}


def ensure_vectors(
    structure_pks: Sequence[int],
    *,
    representation: str | None = None,
    params: dict[str, Any] | None = None,
    model: ModelData | str | int | None = None,
    batch_size: int = 1000,
) -> list[FeaturesData]:
    """The FeaturesData holding vectors of ``structure_pks``, computing (in batches) the ones that are missing.

    Give a ``representation`` (with ``params``) or an embedding ``model``.
    """
    from ..query import feature_nodes_of

    if (representation is None) == (model is None):
        raise ValueError('give either a representation or a model')
    pks = sorted(set(structure_pks))
    run: Any
    if representation is not None:
        from ..core.representations import load_representation_class
        from ..workflows.featurize_group import resolve_params
        from .featurize import featurize_structures

        resolved = load_representation_class(representation).from_params(
            resolve_params(representation, params, pks=pks)
        )
        name, version, stored = resolved.name, resolved.version, resolved.get_params()

        def run(nodes: list[orm.StructureData]) -> None:
            featurize_structures(nodes, representation, stored)
    else:
        from ..data.model import load_model_node
        from .embed import embed_structures, embedding_params

        node = load_model_node(model)  # type: ignore[arg-type]
        text = str(node.base.attributes.get('version'))
        name, version, stored = node.name, int(text) if text.isdigit() else 0, embedding_params(node, None)

        def run(nodes: list[orm.StructureData]) -> None:
            embed_structures(nodes, node)

    found = feature_nodes_of(pks, name, version, stored)
    pending = [pk for pk in pks if pk not in found]
    for start in range(0, len(pending), batch_size):
        query = orm.QueryBuilder().append(
            orm.StructureData, filters={'id': {'in': pending[start : start + batch_size]}}
        )
        run(sorted(query.all(flat=True), key=lambda n: n.pk))
    if pending:
        found = feature_nodes_of(pks, name, version, stored)
    unique = {node.pk: node for node in found.values()}
    return [unique[pk] for pk in sorted(unique)]  # type: ignore[type-var]


class TrainResult:
    """What :func:`train_property_model` made: the model, the process, metrics and what was left out."""

    def __init__(self, model: ModelData, process: orm.CalcFunctionNode, skipped: list[tuple[int, str]]) -> None:
        self.model = model
        self.process = process
        self.metrics: dict[str, Any] = process.outputs.metrics.get_dict()
        self.skipped = skipped + [
            (int(item['pk']), str(item['reason']))
            for item in (process.outputs.skipped if 'skipped' in process.outputs else [])
        ]


def train_property_model(
    dft: orm.Group | str | Sequence[int],
    target: str,
    *,
    representation: str | None = None,
    params: dict[str, Any] | None = None,
    model: ModelData | str | int | None = None,
    name: str | None = None,
    structure_link: str = 'output_structure',
    folds: int = 5,
    seed: int = 0,
    parity_plot: str | Path | None = None,
) -> TrainResult:
    """Train a property model of ``target`` from the finished DFT processes of a Group (or pks).

    The vectors are those of the structures the processes output (computed first where missing): a
    ``representation`` (``matembed.magpie``, ``matembed.xrd`` for Lee et al. 2022's route, ...) or an embedding
    ``model``'s. Processes that did not finish ok, lack the output link or the target are skipped and reported.

    :param parity_plot: write a PNG of the cross-validated predictions against the DFT values.
    :raises ValueError: no finished DFT process, an unknown target, fewer than 2 usable rows.
    """
    if target not in DFT_COLUMNS:
        raise ValueError(f'unknown target {target!r}; DFT labels: {", ".join(DFT_COLUMNS)}')
    records, skipped = read_dft_records(**_selection(dft), structure_link=structure_link)
    feature_nodes = ensure_vectors(
        [r.structure_pk for r in records], representation=representation, params=params, model=model
    )
    if not feature_nodes:
        raise ValueError('none of the DFT structures could be featurised')
    vectors = vectors_by_uuid(feature_nodes)
    structures = dict(
        orm.QueryBuilder()
        .append(orm.StructureData, filters={'id': {'in': [r.structure_pk for r in records]}}, project=['id', '*'])
        .all()
    )  # one query for every structure, not one load per record
    usable = [r for r in records if math.isfinite(r.labels[target]) and structures[r.structure_pk].uuid in vectors]
    if len(usable) < 2:
        raise ValueError(
            f'only {len(usable)} of {len(records)} finished DFT process(es) have both a {target} label and a '
            f'{feature_nodes[0].representation} vector; a model needs >= 2'
        )
    source_name = feature_nodes[0].representation
    inputs: dict[str, Any] = {
        'parameters': orm.Dict(
            {'target': target, 'name': name or f'{target}.{source_name}', 'folds': folds, 'seed': seed}
        ),
        'structures': {},
        'dft': {},
        'features': {f'f{i:04d}': node for i, node in enumerate(feature_nodes)},
    }
    for index, record in enumerate(records):
        key = row_key(index)
        inputs['structures'][key] = structures[record.structure_pk]
        inputs['dft'][key] = dict(record.sources)
    outputs, process = train_property.run_get_node(**inputs)  # type: ignore[arg-type]
    assert outputs is not None
    result = TrainResult(outputs['model'], process, skipped)
    if parity_plot is not None:
        write_parity_plot(
            parity_plot,
            result.metrics['targets'],
            result.metrics['cv_predictions'],
            target=target,
            title=f'{result.model.name}: {result.metrics["cv_folds"]}-fold cross-validation',
        )
    return result


class PredictionResult:
    """What :func:`predict_property` made: the predictions node, its process and the members left out."""

    def __init__(self, predictions: FeaturesData, process: orm.CalcFunctionNode, skipped: list[tuple[int, str]]):
        self.predictions = predictions
        self.process = process
        self.skipped = skipped

    def by_pk(self) -> dict[int, tuple[float, float]]:
        """Structure pk -> (prediction, standard deviation) for the rows that succeeded."""
        uuids = [u for u in self.predictions.rows if u]
        pk_of = dict(
            orm.QueryBuilder().append(orm.StructureData, filters={'uuid': {'in': uuids}}, project=['uuid', 'id']).all()
        )
        matrix = self.predictions.features
        return {
            pk_of[uuid]: (float(matrix[row, 0]), float(matrix[row, 1]))
            for row, uuid in enumerate(self.predictions.rows)
            if uuid in pk_of and np.isfinite(matrix[row, 0])
        }


def predict_property(
    candidates: orm.Group | str | Sequence[int],
    model: ModelData | str | int,
    *,
    structure_link: str = 'output_structure',
) -> PredictionResult:
    """Predict with a property model for every structure of a Group (or pks; DFT processes give their structure).

    The vectors of the model's source are computed first where missing (representations), or must exist
    (embedding models: they are computed with the model named in the card when it is registered).
    """
    from ..data.model import load_model_node

    node = load_model_node(model)
    if node.base.attributes.get('kind') != 'regressor':
        raise ValueError(f'{node} is a {node.base.attributes.get("kind")} model, not a property model on vectors')
    source = node.load_model(device='cpu').source  # type: ignore[attr-defined]
    members = group_members(**_selection(candidates), structure_link=structure_link)
    if not members.structure_pks:
        raise ValueError('no structure to predict for (the selection is empty or holds no finished DFT process)')
    from ..core.representations import list_representations

    if source['representation'] in list_representations():
        feature_nodes = ensure_vectors(
            members.structure_pks, representation=source['representation'], params=source['params']
        )
    else:  # an embedding model's vectors: the model node of the recorded weights
        sha = source['params'].get('model_sha256')
        embedder = orm.QueryBuilder().append(ModelData, filters={'attributes.sha256': sha}).first(flat=True)
        feature_nodes = ensure_vectors(members.structure_pks, model=embedder or source['params']['model'])
    structures = (
        orm.QueryBuilder().append(orm.StructureData, filters={'id': {'in': members.structure_pks}}).all(flat=True)
    )
    inputs = {
        'model': node,
        'structures': {row_key(i): s for i, s in enumerate(sorted(structures, key=lambda s: s.pk))},
        'features': {f'f{i:04d}': n for i, n in enumerate(feature_nodes)},
    }
    outputs, process = predict.run_get_node(**inputs)  # type: ignore[arg-type]
    assert outputs is not None
    return PredictionResult(outputs['predictions'], process, members.skipped)


def write_parity_plot(
    path: str | Path, reference: Sequence[float], predicted: Sequence[float], *, target: str, title: str = ''
) -> Path:
    """A predicted-vs-DFT parity plot (PNG) with the MAE in the legend."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    x, y = np.asarray(reference, float), np.asarray(predicted, float)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=150)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color='0.6', lw=1)
    ax.scatter(x, y, s=18, label=f'MAE {np.abs(x - y).mean():.3g}')
    from ..dft.processes import DFT_UNITS

    unit = f' ({DFT_UNITS[target]})' if target in DFT_UNITS else ''
    ax.set_xlabel(f'DFT {target}{unit}')
    ax.set_ylabel(f'predicted {target}{unit}')
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_title(title, fontsize=9)
    ax.legend(loc='upper left')
    fig.tight_layout()
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png')
    plt.close(fig)
    path.write_bytes(buffer.getvalue())
    return path

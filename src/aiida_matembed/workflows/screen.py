"""``matembed.screen``: a DFT screening loop steered by a property model learned from its own DFT labels.

Each round:

1. **represent** the candidates that have no label yet (vectors computed once, stored as FeaturesData);
2. **predict** their target with the current model (``matembed.predict``; none in the first round unless
   ``initial_labels`` are given);
3. **select** ``k`` of them: ``lowest`` / ``highest`` prediction, highest predictive ``uncertainty``, or
   farthest-point ``diversity`` in the standardised representation space (used whenever there is no model yet);
4. optionally **prerelax** them with CHGNet (``matembed.prerelax``) so DFT starts closer to its minimum;
5. run the **DFT** WorkChain given by entry point (default ``quantumespresso.pw.relax``) through its
   ``get_builder_from_protocol``, at most ``max_concurrent`` at a time; a failed or killed DFT process is
   recorded and the round goes on with the others;
6. **label**: the finished DFT processes join the labelled Group; their output structures are represented and
   a new model is trained on all labels (``matembed.train_property``).

The outputs are the final ``model``, its ``predictions`` for every candidate, and ``metrics`` (per round: the
DFT processes, the previous model's error on the new labels, the new model's cross-validated error). The
labelled Group holds every DFT process that finished ok, so a later screen (or ``train-property``) continues
from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import ExitCode, WorkChain, append_, calcfunction, if_, while_
from aiida.plugins import WorkflowFactory

from ..dft.processes import DFT_COLUMNS, group_members
from .protocols import ProtocolMixin, recursive_merge

__all__ = ('SELECTIONS', 'ScreenWorkChain', 'farthest_point_selection', 'launch_screen', 'screen_summary',
           'select_candidates')  # fmt: skip

SELECTIONS = ('lowest', 'highest', 'uncertainty', 'diversity')


def farthest_point_selection(vectors: np.ndarray, k: int, chosen: np.ndarray | None = None) -> list[int]:
    """Indices of ``k`` rows of ``vectors`` chosen greedily, each farthest from those chosen before it.

    Columns are standardised first. ``chosen`` (rows of already-labelled vectors, same columns) seeds the set;
    without it the first pick is the row nearest the centroid (deterministic). Gonzalez's 2-approximation of
    the k-center problem (Theor. Comput. Sci. 38, 293 (1985)).
    """
    x = np.asarray(vectors, dtype=float)
    if len(x) == 0 or k <= 0:
        return []
    stack = x if chosen is None or len(chosen) == 0 else np.vstack([x, chosen])
    mean, scale = stack.mean(0), stack.std(0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    if chosen is not None and len(chosen):
        seeds = (np.asarray(chosen, dtype=float) - mean) / scale
        distance = np.min(((z[:, None, :] - seeds[None]) ** 2).sum(-1), axis=1)
        picked: list[int] = []
    else:
        first = int(np.argmin(((z - z.mean(0)) ** 2).sum(1)))
        picked = [first]
        distance = ((z - z[first]) ** 2).sum(1)
    while len(picked) < min(k, len(x)):
        distance[picked] = -1.0
        index = int(np.argmax(distance))
        picked.append(index)
        distance = np.minimum(distance, ((z - z[index]) ** 2).sum(1))
    return picked


def select_candidates(
    selection: str,
    k: int,
    *,
    vectors: np.ndarray,
    mean: np.ndarray | None = None,
    std: np.ndarray | None = None,
    labelled: np.ndarray | None = None,
) -> list[int]:
    """Rows to run DFT on: by prediction (``lowest`` / ``highest``), ``uncertainty`` or ``diversity``.

    Rows without a finite prediction are taken last. Without predictions every rule falls back to diversity.
    """
    if selection not in SELECTIONS:
        raise ValueError(f'selection must be one of {", ".join(SELECTIONS)}, got {selection!r}')
    if selection == 'diversity' or mean is None or std is None:
        return farthest_point_selection(vectors, k, labelled)
    key = {'lowest': mean, 'highest': -mean, 'uncertainty': -std}[selection]
    key = np.where(np.isfinite(key), key, np.inf)
    return [int(i) for i in np.argsort(key, kind='stable')[:k]]


@calcfunction
def screen_metrics(**kwargs: Any) -> orm.Dict:
    """Collect the per-round metrics (``round_NN`` Dicts) into one Dict."""
    return orm.Dict({'rounds': [kwargs[key].get_dict() for key in sorted(kwargs)]})


def _validate_inputs(inputs: dict[str, Any], _: Any) -> str | None:
    target = inputs['target'].value
    if target not in DFT_COLUMNS:
        return f'unknown target {target!r}; DFT labels: {", ".join(DFT_COLUMNS)}'
    if ('representation' in inputs) == ('model' in inputs):
        return 'give either a representation or an embedding model'
    if 'model' in inputs:
        from ..data.model import ModelData

        model = inputs['model']
        if not isinstance(model, ModelData) or model.base.attributes.get('kind') == 'regressor':
            return f'model must be an embedding model (matembed.model), got {model}'
    if 'representation' in inputs:
        from ..core.representations import load_representation_class

        try:
            cls = load_representation_class(inputs['representation'].value)
            cls.from_params(inputs['parameters'].get_dict() if 'parameters' in inputs else {})
        except (ValueError, TypeError) as exception:
            return str(exception)
    for name in ('k', 'rounds', 'max_concurrent', 'folds'):
        if name in inputs and inputs[name].value < (2 if name == 'folds' else 1):
            return f'{name} must be >= {2 if name == "folds" else 1}, got {inputs[name].value}'
    if inputs['selection'].value not in SELECTIONS:
        return f'selection must be one of {", ".join(SELECTIONS)}, got {inputs["selection"].value!r}'
    try:
        orm.load_group(inputs['candidates'].value)
    except Exception:
        return f'no Group {inputs["candidates"].value!r}'
    try:
        WorkflowFactory(inputs['dft_workflow'].value)
    except Exception as exception:
        return f'unknown DFT workflow entry point {inputs["dft_workflow"].value!r}: {exception}'
    return None


def _dft_inputs(process_pks: Any) -> set[int]:
    """Pks of the structures DFT processes started from, and of the structures those were pre-relaxed from."""
    started: set[int] = set()
    for pk in process_pks:
        for link in orm.load_node(pk).base.links.get_incoming(node_class=orm.StructureData).all():
            started.add(link.node.pk)  # type: ignore[arg-type]
            creator = link.node.creator
            if creator is not None and creator.process_label == 'prerelax':
                started.update(n.pk for n in creator.base.links.get_incoming(node_class=orm.StructureData).all_nodes())
    return started


class ScreenWorkChain(ProtocolMixin, WorkChain):
    """Screen the candidates of a Group with DFT, ``k`` per round, chosen by a model trained on the labels."""

    _protocol_file = 'screen'

    @classmethod
    def define(cls, spec: Any) -> None:
        """Inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.input('candidates', valid_type=orm.Str, help='Label, pk or UUID of the Group of candidate structures.')
        spec.input('target', valid_type=orm.Str, default=lambda: orm.Str('energy_per_atom'), help='DFT label.')
        spec.input('representation', valid_type=orm.Str, required=False, help='Representation of the model.')
        spec.input('parameters', valid_type=orm.Dict, required=False, help='Options of the representation.')
        spec.input('model', valid_type=orm.Data, required=False, help='Embedding model (matembed.model) instead.')
        spec.input('k', valid_type=orm.Int, default=lambda: orm.Int(5), help='DFT runs per round.')
        spec.input('rounds', valid_type=orm.Int, default=lambda: orm.Int(1))
        spec.input('selection', valid_type=orm.Str, default=lambda: orm.Str('uncertainty'), help=', '.join(SELECTIONS))
        spec.input('prerelax', valid_type=orm.Bool, default=lambda: orm.Bool(False), help='CHGNet pre-relaxation.')
        spec.input('code', valid_type=orm.AbstractCode, help='The DFT code (e.g. pw.x).')
        spec.input('dft_workflow', valid_type=orm.Str, default=lambda: orm.Str('quantumespresso.pw.relax'))
        spec.input('dft_protocol', valid_type=orm.Str, default=lambda: orm.Str('fast'))
        spec.input('dft_overrides', valid_type=orm.Dict, required=False, help='Overrides of the DFT protocol.')
        spec.input('dft_options', valid_type=orm.Dict, required=False, help='metadata.options of the DFT jobs.')
        spec.input(
            'pseudo_family',
            valid_type=orm.Str,
            required=False,
            help='Pseudopotential family (Quantum ESPRESSO workflows); its coverage is checked before submitting.',
        )
        spec.input('max_concurrent', valid_type=orm.Int, default=lambda: orm.Int(4))
        spec.input('folds', valid_type=orm.Int, default=lambda: orm.Int(5), help='K of the cross-validation.')
        spec.input('labelled_group', valid_type=orm.Str, required=False, help='Group for the DFT processes.')
        spec.input('initial_labels', valid_type=orm.Str, required=False, help='Group of DFT processes to start from.')
        spec.input('structure_link', valid_type=orm.Str, default=lambda: orm.Str('output_structure'))
        spec.inputs.validator = _validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.should_run_round)(  # type: ignore[arg-type]
                cls.select,  # type: ignore[arg-type]
                if_(cls.should_prerelax)(cls.prerelax),  # type: ignore[arg-type]
                while_(cls.has_dft_to_submit)(cls.submit_dft, cls.inspect_dft),  # type: ignore[arg-type]
                cls.train,  # type: ignore[arg-type]
            ),
            cls.finalize,
        )
        spec.output('model', valid_type=orm.Data, required=False, help='The model trained on all labels.')
        spec.output('predictions', valid_type=orm.Data, required=False, help="The final model's predictions.")
        spec.output('metrics', valid_type=orm.Dict, help='Per-round metrics.')
        spec.output_namespace('round_models', valid_type=orm.Data, dynamic=True, help='The model of every round.')
        spec.exit_code(300, 'ERROR_NO_CANDIDATES', message='the candidates Group holds no usable structure')
        spec.exit_code(301, 'ERROR_NO_MODEL', message='no model could be trained: {reason}')
        spec.exit_code(302, 'ERROR_ALL_DFT_FAILED', message='every DFT process of round {round} failed')

    @classmethod
    def get_builder_from_protocol(
        cls,
        candidates: orm.Group | str,
        code: orm.AbstractCode,
        *,
        protocol: str | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> Any:
        """A builder for screening ``candidates`` with ``code``, its inputs taken from a protocol.

        :param protocol: ``fast``, ``moderate`` (default) or ``precise`` (``protocols/screen.yaml``).
        :param overrides: input name -> value, applied over the protocol's (``dft_overrides`` merged key by key).
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        group = candidates if isinstance(candidates, orm.Group) else orm.load_group(candidates)
        builder = cls.get_builder()
        builder.candidates = orm.Str(group.uuid)
        builder.code = code
        wrap = {'k': orm.Int, 'rounds': orm.Int, 'max_concurrent': orm.Int, 'folds': orm.Int, 'prerelax': orm.Bool}
        for key, value in inputs.items():
            if value is None:
                continue
            if key in ('parameters', 'dft_overrides', 'dft_options'):
                builder[key] = orm.Dict(value)
            elif key == 'model':
                from ..data.model import load_model_node

                builder.model = load_model_node(value)
            else:
                builder[key] = wrap.get(key, orm.Str)(value)
        if 'model' in inputs and 'representation' not in (overrides or {}):
            builder.pop('representation', None)
        return builder

    # --------------------------------------------------------------------------------------------- helpers
    def _source(self) -> dict[str, Any]:
        if 'model' in self.inputs:
            return {'model': self.inputs.model}
        return {'representation': self.inputs.representation.value, 'params': dict(self.ctx.params)}

    def _vectors(self, pks: list[int]) -> dict[int, np.ndarray]:
        from ..calculations.property import ensure_vectors

        nodes = ensure_vectors(pks, **self._source())
        wanted = set(pks)
        pk_of = dict(
            orm.QueryBuilder()
            .append(orm.StructureData, filters={'id': {'in': list(wanted)}}, project=['uuid', 'id'])
            .all()
        )
        from ..query import vectors_by_uuid

        return {pk_of[uuid]: vector for uuid, vector in vectors_by_uuid(nodes).items() if uuid in pk_of}

    def _labelled(self) -> orm.Group:
        return orm.load_group(self.ctx.labelled_group)

    # ------------------------------------------------------------------------------------------------ steps
    def setup(self) -> ExitCode | None:
        """Resolve the candidates, make the labelled Group, start from ``initial_labels`` if given."""
        candidates = orm.load_group(self.inputs.candidates.value)
        members = group_members(candidates, structure_link=self.inputs.structure_link.value)
        for pk, reason in members.skipped:
            self.report(f'candidate {pk} skipped: {reason}')
        if not members.structure_pks:
            return self.exit_codes.ERROR_NO_CANDIDATES
        label = self.inputs.labelled_group.value if 'labelled_group' in self.inputs else f'{candidates.label}/labelled'
        group, _ = orm.Group.collection.get_or_create(label=label)
        self.ctx.labelled_group = group.uuid
        self.node.base.extras.set('labelled_group', group.label)
        if 'initial_labels' in self.inputs:
            initial = orm.load_group(self.inputs.initial_labels.value)
            group.add_nodes(list(initial.nodes))
        labelled = group_members(group, structure_link=self.inputs.structure_link.value)
        done = _dft_inputs(labelled.process_of.values()) & set(members.structure_pks)
        if done:
            self.report(f'{len(done)} candidate(s) already have a DFT label in {group.label!r}: not run again')
        self.ctx.remaining = [pk for pk in members.structure_pks if pk not in done]
        self.ctx.labelled_candidates = sorted(done)
        self.ctx.params = {}
        if 'representation' in self.inputs:  # options taken from the batch: resolved once, on everything
            from .featurize_group import resolve_params

            given = self.inputs.parameters.get_dict() if 'parameters' in self.inputs else {}
            every = sorted(set(members.structure_pks) | set(labelled.structure_pks))
            self.ctx.params = resolve_params(self.inputs.representation.value, given, pks=every)
        self.ctx.round = 0
        self.ctx.model = None
        self.ctx.metrics = []
        self.ctx.failed = []
        self.ctx.candidate_of = {}
        if labelled.process_of:
            self._train_model()
        return None

    def should_run_round(self) -> bool:
        """Whether rounds and unlabelled candidates remain."""
        return self.ctx.round < self.inputs.rounds.value and bool(self.ctx.remaining)

    def select(self) -> None:
        """Represent and predict the unlabelled candidates, then choose ``k`` of them."""
        self.ctx.round += 1
        remaining = list(self.ctx.remaining)
        labelled_candidates = sorted(set(self.ctx.labelled_candidates) | set(self.ctx.candidate_of.values()))
        vectors = self._vectors(remaining + labelled_candidates)
        usable = [pk for pk in remaining if pk in vectors]
        for pk in sorted(set(remaining) - set(usable)):
            self.report(f'candidate StructureData<{pk}> has no vector (its featurisation failed): not selectable')
        self.ctx.remaining = usable
        matrix = np.stack([vectors[pk] for pk in usable]) if usable else np.zeros((0, 0))
        mean = std = None
        predicted: dict[int, tuple[float, float]] = {}
        if self.ctx.model is not None and usable:
            from ..calculations.property import predict_property

            result = predict_property(usable, self.ctx.model)
            predicted = result.by_pk()
            mean = np.array([predicted.get(pk, (np.nan, np.nan))[0] for pk in usable])
            std = np.array([predicted.get(pk, (np.nan, np.nan))[1] for pk in usable])
        selection = self.inputs.selection.value if mean is not None else 'diversity'
        labelled_vectors = None
        done = [pk for pk in labelled_candidates if pk in vectors]
        if selection == 'diversity' and done:
            labelled_vectors = np.stack([vectors[pk] for pk in done])
        rows = select_candidates(
            selection, self.inputs.k.value, vectors=matrix, mean=mean, std=std, labelled=labelled_vectors
        )
        chosen = [usable[i] for i in rows]
        self.ctx.selected = chosen
        self.ctx.predicted = {str(pk): predicted[pk] for pk in chosen if pk in predicted}
        self.ctx.remaining = [pk for pk in usable if pk not in chosen]
        self.ctx.to_run = list(chosen)
        self.ctx.start_of = {str(pk): pk for pk in chosen}
        self.ctx.dft_nodes = []
        self.ctx.round_failed = []
        self.report(f'round {self.ctx.round}: selected {chosen} by {selection}')

    def should_prerelax(self) -> bool:
        """Whether to pre-relax the selected structures with CHGNet."""
        return bool(self.inputs.prerelax.value) and bool(self.ctx.to_run)

    def prerelax(self) -> None:
        """Pre-relax the selected structures (one ``matembed.prerelax`` process); DFT starts from its outputs."""
        from ..calculations.prerelax import prerelax_structures

        nodes = [orm.load_node(pk) for pk in self.ctx.to_run]
        relaxed, _ = prerelax_structures(nodes)
        for pk, node in zip(list(self.ctx.to_run), relaxed, strict=True):
            if node is None:
                self.report(f'CHGNet could not pre-relax StructureData<{pk}>: DFT starts from the candidate')
            else:
                self.ctx.start_of[str(pk)] = node.pk

    def has_dft_to_submit(self) -> bool:
        """Whether selected structures still wait for their DFT process."""
        return bool(self.ctx.to_run)

    def _builder(self, structure: orm.StructureData) -> Any:
        workflow = WorkflowFactory(self.inputs.dft_workflow.value)
        overrides = self.inputs.dft_overrides.get_dict() if 'dft_overrides' in self.inputs else {}
        entry = self.inputs.dft_workflow.value
        if 'pseudo_family' in self.inputs and entry.startswith('quantumespresso.pw'):
            from aiida.plugins import GroupFactory

            from ..dft.setup import check_family_covers

            label = self.inputs.pseudo_family.value
            family = orm.QueryBuilder().append(GroupFactory('pseudo.family'), filters={'label': label}).first(flat=True)
            if family is None:
                raise ValueError(f'no pseudopotential family {label!r}: run `verdi data matembed dft setup`')
            check_family_covers(family, structure.get_symbols_set())
            namespaces = ('base_relax', 'base_init_relax') if entry == 'quantumespresso.pw.relax' else (None,)
            for namespace in namespaces:
                patch = {'pseudo_family': label}
                overrides = recursive_merge(overrides, {namespace: patch} if namespace else patch)
        kwargs: dict[str, Any] = {'protocol': self.inputs.dft_protocol.value, 'overrides': overrides}
        if 'dft_options' in self.inputs:
            kwargs['options'] = self.inputs.dft_options.get_dict()
        return workflow.get_builder_from_protocol(self.inputs.code, structure, **kwargs)  # type: ignore[union-attr]

    def submit_dft(self) -> None:
        """Submit DFT processes for the next ``max_concurrent`` selected structures."""
        batch = self.ctx.to_run[: self.inputs.max_concurrent.value]
        self.ctx.to_run = self.ctx.to_run[len(batch) :]
        for pk in batch:
            structure = orm.load_node(self.ctx.start_of[str(pk)])
            assert isinstance(structure, orm.StructureData)
            try:
                builder = self._builder(structure)
            except Exception as exception:  # any plugin's builder: recorded for this candidate, the rest goes on
                self.report(f'no DFT for StructureData<{pk}>: {exception}')
                self.ctx.round_failed.append({'candidate': pk, 'process': None, 'reason': str(exception)})
                continue
            builder.metadata.label = f'screen round {self.ctx.round}: StructureData<{pk}>'
            node = self.submit(builder)
            self.ctx.candidate_of[str(node.pk)] = pk
            self.report(f'submitted {node.process_label}<{node.pk}> for StructureData<{pk}>')
            self.to_context(dft_nodes=append_(node))

    def inspect_dft(self) -> None:
        """Add the DFT processes that finished ok to the labelled Group; record the others and go on."""
        group = self._labelled()
        for node in self.ctx.dft_nodes:
            if node.pk in self.ctx.get('inspected', []):
                continue
            self.ctx.inspected = [*self.ctx.get('inspected', []), node.pk]
            candidate = self.ctx.candidate_of[str(node.pk)]
            if node.is_finished_ok:
                group.add_nodes(node)
            else:
                reason = f'{node.process_label}<{node.pk}> {node.process_state.value}, exit status {node.exit_status}'
                self.report(f'DFT of StructureData<{candidate}> failed: {reason}; going on with the others')
                self.ctx.round_failed.append({'candidate': candidate, 'process': node.pk, 'reason': reason})

    def _train_model(self) -> str | None:
        """Train on every label of the labelled Group; return the reason when no model could be trained."""
        from ..calculations.property import train_property_model

        try:
            result = train_property_model(
                self._labelled(),
                self.inputs.target.value,
                name=f'screen.{self.inputs.target.value}',
                folds=self.inputs.folds.value,
                structure_link=self.inputs.structure_link.value,
                **self._source(),
            )
        except ValueError as exception:
            self.report(f'no model trained: {exception}')
            return str(exception)
        self.ctx.model = result.model.pk
        self.ctx.last_train = result.metrics
        return None

    def train(self) -> ExitCode | None:
        """Compare the previous model's predictions with the new labels, then retrain on all labels."""
        from ..dft.processes import read_dft_records

        ok = [n for n in self.ctx.dft_nodes if n.is_finished_ok]
        round_metrics: dict[str, Any] = {
            'round': self.ctx.round,
            'selected': list(self.ctx.selected),
            'dft_processes': [n.pk for n in self.ctx.dft_nodes],
            'failed': list(self.ctx.round_failed),
        }
        self.ctx.failed += self.ctx.round_failed
        if ok:
            records, _ = read_dft_records(pks=[n.pk for n in ok], structure_link=self.inputs.structure_link.value)
            target = self.inputs.target.value
            pairs = []
            for record in records:
                candidate = self.ctx.candidate_of[str(record.process_pk)]
                value = record.labels[target] if np.isfinite(record.labels[target]) else None  # JSON: no NaN
                guess = self.ctx.predicted.get(str(candidate))
                pairs.append(
                    {
                        'candidate': candidate,
                        'process': record.process_pk,
                        'dft': value,
                        'predicted': guess[0] if guess else None,
                        'std': guess[1] if guess else None,
                    }
                )
            round_metrics['labels'] = pairs
            errors = [
                abs(p['dft'] - p['predicted'])
                for p in pairs
                if p['dft'] is not None and p['predicted'] is not None and np.isfinite(p['predicted'])
            ]
            if errors:
                round_metrics['prediction_mae'] = float(np.mean(errors))
        previous = self.ctx.model
        reason = self._train_model() if ok else None
        if self.ctx.model is not None and (self.ctx.model != previous or not ok):
            round_metrics['model'] = self.ctx.model
            round_metrics.update({k: self.ctx.last_train[k] for k in ('cv_mae', 'baseline_mae', 'n_train')})
            self.out(f'round_models.round_{self.ctx.round:02d}', orm.load_node(self.ctx.model))
        self.ctx.metrics.append(round_metrics)
        if not ok and self.ctx.dft_nodes:
            self.report(f'every DFT process of round {self.ctx.round} failed')
        if reason is not None:
            self.ctx.no_model_reason = reason
            round_metrics['no_model'] = reason
        return None

    def finalize(self) -> ExitCode | None:
        """Predict every candidate with the final model; output the model, the predictions and the metrics."""
        metrics = {f'round_{i:02d}': orm.Dict(m) for i, m in enumerate(self.ctx.metrics)}
        self.out('metrics', screen_metrics(**metrics))
        if self.ctx.model is None:
            if self.ctx.failed and not any(m.get('labels') for m in self.ctx.metrics):
                return self.exit_codes.ERROR_ALL_DFT_FAILED.format(round=self.ctx.round)
            return self.exit_codes.ERROR_NO_MODEL.format(reason=self.ctx.get('no_model_reason', 'no DFT label'))
        from ..calculations.property import predict_property

        model = orm.load_node(self.ctx.model)
        self.out('model', model)
        candidates = orm.load_group(self.inputs.candidates.value)
        result = predict_property(candidates, self.ctx.model, structure_link=self.inputs.structure_link.value)
        self.out('predictions', result.predictions)
        return None


def screen_summary(node: orm.ProcessNode) -> dict[str, Any]:
    """A JSON-ready summary of a (finished or running) screen: state, labelled Group, model, DFT processes, metrics."""
    outputs = node.outputs
    metrics = outputs.metrics.get_dict()['rounds'] if 'metrics' in outputs else []
    labelled = node.base.extras.get('labelled_group', None)
    return {
        'process': node.pk,
        'uuid': node.uuid,
        'state': node.process_state.value if node.process_state else None,
        'exit_status': node.exit_status,
        'exit_message': node.exit_message,
        'labelled_group': labelled,
        'model': outputs.model.pk if 'model' in outputs else None,
        'predictions': outputs.predictions.pk if 'predictions' in outputs else None,
        'dft_processes': [pk for m in metrics for pk in m.get('dft_processes', [])],
        'rounds': metrics,
    }


def launch_screen(
    candidates: orm.Group | str,
    code: orm.AbstractCode,
    *,
    protocol: str | None = None,
    overrides: dict[str, Any] | None = None,
    submit: bool = False,
    parity_plot: str | None = None,
) -> tuple[dict[str, Any], orm.WorkChainNode]:
    """Screen ``candidates`` with ``code``: build from the protocol, run (or ``submit`` to the daemon).

    :returns: the :func:`screen_summary` and the WorkChain node (just submitted when ``submit``).
    """
    builder = ScreenWorkChain.get_builder_from_protocol(candidates, code, protocol=protocol, overrides=overrides)
    summary = screen_launch(builder, submit=submit, parity_plot=parity_plot)
    node = orm.load_node(summary['process'])
    assert isinstance(node, orm.WorkChainNode)
    return summary, node


def screen_launch(builder: Any, *, submit: bool = False, parity_plot: Any = None) -> dict[str, Any]:
    """Run or submit a ScreenWorkChain builder; return its :func:`screen_summary` (and write the parity plot)."""
    from aiida.engine import run_get_node
    from aiida.engine import submit as submit_process

    if submit:
        node = submit_process(builder)
        return screen_summary(node)
    _, node = run_get_node(builder)
    summary = screen_summary(node)
    if parity_plot is not None and summary['model'] is not None:
        from ..calculations.property import write_parity_plot

        model = orm.load_node(summary['model'])
        metrics = model.creator.outputs.metrics.get_dict()
        write_parity_plot(parity_plot, metrics['targets'], metrics['cv_predictions'], target=metrics['target'],
                          title=f'{model.name}: cross-validation on the screen labels')  # fmt: skip
        summary['plot'] = str(parity_plot)
    return summary

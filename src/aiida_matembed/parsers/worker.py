"""Parser of ``matembed.worker``: ``output.npz`` -> the same nodes the calcfunctions make.

``status.json`` decides the exit code (bad input, no GPU, out of memory, crash); when it is missing, the
worker's stderr tells whether the executable was not found on the computer.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from aiida import orm
from aiida.engine import ExitCode
from aiida.parsers import Parser

from ..data.features import FeaturesData
from ..data.xrd import XrdPatternsData

__all__ = ('WorkerParser',)

_NOT_FOUND = ('command not found', 'no such file or directory', 'permission denied')


class WorkerParser(Parser):
    """Build ``features`` / ``patterns`` + ``failures`` from the retrieved files of ``matembed.worker``."""

    def _read(self, name: str) -> str | None:
        try:
            return self.retrieved.base.repository.get_object_content(name, mode='r')
        except (FileNotFoundError, OSError):
            return None

    def parse(self, **kwargs: Any) -> ExitCode | None:
        """Map the worker's status to an exit code, or build the output nodes."""
        status_text = self._read('status.json')
        stderr = (self._read('worker.err') or '').strip()
        if status_text is None:
            tail = stderr[-500:] or '(empty)'
            if any(marker in stderr.lower() for marker in _NOT_FOUND):
                return self.exit_codes.ERROR_WORKER_NOT_INSTALLED.format(stderr=tail)
            if (
                self.node.exit_status == 110
            ):  # the scheduler parser saw the job killed for memory (ERROR_SCHEDULER_OUT_OF_MEMORY)
                return self.exit_codes.ERROR_OUT_OF_MEMORY.format(message=f'killed by the scheduler ({tail})')
            return self.exit_codes.ERROR_NO_STATUS.format(stderr=tail)
        try:
            status = json.loads(status_text)
        except json.JSONDecodeError as exception:
            return self.exit_codes.ERROR_INVALID_OUTPUT.format(message=f'status.json: {exception}')
        state, message = status.get('status'), status.get('message', '')
        if state != 'ok':
            self.out('worker_status', orm.Dict(status))
            code = {
                'bad_input': self.exit_codes.ERROR_BAD_INPUT,
                'no_gpu': self.exit_codes.ERROR_NO_GPU,
                'out_of_memory': self.exit_codes.ERROR_OUT_OF_MEMORY,
            }.get(state, self.exit_codes.ERROR_WORKER_CRASHED)
            return code.format(message=message)
        try:
            arrays, uuids, failures, meta = self._output()
        except Exception as exception:
            return self.exit_codes.ERROR_INVALID_OUTPUT.format(message=f'{type(exception).__name__}: {exception}')
        pk_of = self._pks(uuids, failures)
        for failure in failures:
            failure['uuid'] = uuids[failure['index']]
            failure['pk'] = pk_of.get(failure['uuid'])
        task = self._input('task').value
        try:
            if task == 'xrd':
                self.out('patterns', self._patterns(arrays, uuids, failures, meta))
            else:
                self.out('features', self._features(task, arrays, uuids, failures, meta))
        except ValueError as exception:
            return self.exit_codes.ERROR_INVALID_OUTPUT.format(message=str(exception))
        if failures:
            self.out('failures', orm.List(failures))
        self.out('worker_status', orm.Dict(status))
        return None

    def _input(self, label: str) -> Any:
        """One input node by link label (without loading the thousands of structure links)."""
        return self.node.base.links.get_incoming(link_label_filter=label).one().node

    def _output(self) -> tuple[dict[str, np.ndarray], list[str], list[dict[str, Any]], dict[str, Any]]:
        from ..worker.io import read_output

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / 'output.npz'
            with self.retrieved.base.repository.open('output.npz', mode='rb') as source:
                path.write_bytes(source.read())
            return read_output(path)

    @staticmethod
    def _pks(uuids: list[str], failures: list[dict[str, Any]]) -> dict[str, int]:
        wanted = list({uuids[f['index']] for f in failures})
        if not wanted:
            return {}
        query = orm.QueryBuilder().append(orm.StructureData, filters={'uuid': {'in': wanted}}, project=['uuid', 'id'])
        return dict(query.all())

    def _features(
        self,
        task: str,
        arrays: dict[str, np.ndarray],
        uuids: list[str],
        failures: list[dict[str, Any]],
        meta: dict[str, Any],
    ) -> FeaturesData:
        matrix = arrays['features']
        if len(matrix) != len(uuids):
            raise ValueError(f'{len(matrix)} rows for {len(uuids)} structures')
        labels = [str(label) for label in arrays['labels']]
        if task == 'embed':
            from ..calculations.embed import _version, embedding_params

            model = self._input('model')
            if meta.get('sha256') != model.sha256:
                raise ValueError(f'the worker ran weights with sha256 {meta.get("sha256")}, not {model.sha256}')
            features = FeaturesData(
                matrix,
                labels=labels,
                representation=model.name,
                version=_version(model),
                params=embedding_params(model, meta['modality']),
                rows=uuids,
                failures=failures,
            )
            features.base.attributes.set('device', str(meta.get('device')))
            return features
        return FeaturesData(
            matrix,
            labels=labels,
            representation=meta['representation'],
            version=meta['version'],
            params=meta['params'],
            rows=uuids,
            failures=failures,
        )

    @staticmethod
    def _patterns(
        arrays: dict[str, np.ndarray], uuids: list[str], failures: list[dict[str, Any]], meta: dict[str, Any]
    ) -> XrdPatternsData:
        from ..core.xrd import Peaks

        ptr = arrays['peak_ptr']
        hkls = json.loads(str(arrays['hkls']))
        settings_of_hkls = list(meta.get('hkl_settings') or [])
        if len(ptr) != len(uuids) + 1 or len(arrays['profiles']) != len(uuids):
            raise ValueError(f'patterns for {len(ptr) - 1} structures, expected {len(uuids)}')
        peaks = []
        for row in range(len(uuids)):
            part = slice(int(ptr[row]), int(ptr[row + 1]))
            peaks.append(
                Peaks(
                    two_theta=arrays['peak_two_theta'][part],
                    intensity=arrays['peak_intensity'][part],
                    hkls=[{tuple(hkl): mult for hkl, mult in family} for family in hkls[row]],
                    d_spacing=arrays['peak_d_spacing'][part],
                    multiplicity=arrays['peak_multiplicity'][part],
                    setting=settings_of_hkls[row] if row < len(settings_of_hkls) else None,
                )
            )
        return XrdPatternsData(
            arrays['two_theta_grid'],
            arrays['profiles'],
            peaks,
            settings=meta['settings'],
            rows=uuids,
            failures=failures,
        )

"""Typed launchers of the Group WorkChains: build from a protocol, then run here or submit to the daemon.

Each returns ``(results, node)``: the outputs of the finished WorkChain (empty when submitted) and its node, in
the style of aiida-shell's ``launch_shell_job``::

    from aiida_matembed.launch import featurize_group, embed_group, screen
    results, node = featurize_group('my-structures', 'matembed.soap', protocol='fast')
    results, node = embed_group('my-structures', 'matembed.cmml', submit=True)     # on the daemon
    results, node = xrd_group('my-structures', {'wavelength': 'MoKa'})
    summary, node = screen('candidates', orm.load_code('pw@localhost'), protocol='fast')

The protocols are the YAML files of :mod:`aiida_matembed.workflows.protocols`; ``overrides`` are WorkChain
inputs by name (plain Python values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiida import orm

from .data.model import ModelData

if TYPE_CHECKING:
    from .core.xrd.settings import XrdSettings
from .workflows.screen import launch_screen as screen

__all__ = ('embed_group', 'featurize_group', 'screen', 'xrd_group')


def _launch(builder: Any, submit: bool) -> tuple[dict[str, Any], orm.WorkChainNode]:
    from aiida.engine import run_get_node
    from aiida.engine import submit as submit_process

    if submit:
        node = submit_process(builder)
        return {}, node  # type: ignore[return-value]
    results, node = run_get_node(builder)
    return dict(results), node  # type: ignore[return-value]


def featurize_group(
    group: orm.Group | str,
    representation: str,
    *,
    protocol: str | None = None,
    overrides: dict[str, Any] | None = None,
    submit: bool = False,
) -> tuple[dict[str, Any], orm.WorkChainNode]:
    """Featurise a Group (structures and / or finished DFT processes) with ``matembed.featurize_group``.

    :returns: the WorkChain's outputs (``features``: one FeaturesData per batch) and its node.
    """
    from .workflows.featurize_group import FeaturizeGroupWorkChain

    builder = FeaturizeGroupWorkChain.get_builder_from_protocol(
        group, representation, protocol=protocol, overrides=overrides
    )
    return _launch(builder, submit)


def embed_group(
    group: orm.Group | str,
    model: ModelData | str | int,
    *,
    protocol: str | None = None,
    overrides: dict[str, Any] | None = None,
    submit: bool = False,
) -> tuple[dict[str, Any], orm.WorkChainNode]:
    """Embed a Group with a model through ``matembed.embed_group`` (in-process, or the worker CalcJob with a code).

    :returns: the WorkChain's outputs (``results``: one FeaturesData per batch) and its node.
    """
    from .workflows.embed_group import EmbedGroupWorkChain

    builder = EmbedGroupWorkChain.get_builder_from_protocol(group, model, protocol=protocol, overrides=overrides)
    return _launch(builder, submit)


def xrd_group(
    group: orm.Group | str,
    settings: XrdSettings | dict[str, Any] | None = None,
    *,
    protocol: str | None = None,
    overrides: dict[str, Any] | None = None,
    submit: bool = False,
) -> tuple[dict[str, Any], orm.WorkChainNode]:
    """Simulate the powder patterns of a Group with ``matembed.embed_group`` (task ``xrd``), incrementally.

    :param settings: an :class:`~aiida_matembed.core.xrd.XrdSettings` or the fields to change from
        :data:`~aiida_matembed.core.xrd.DEFAULT_XRD` (validated before anything runs).
    :returns: the WorkChain's outputs (``results``: one XrdPatternsData per batch) and its node.
    """
    from .core.xrd.settings import XrdSettings
    from .workflows.embed_group import EmbedGroupWorkChain

    if not isinstance(settings, XrdSettings):
        settings = XrdSettings.from_dict(settings)
    inputs = {'task': 'xrd', 'parameters': settings.as_dict(), **(overrides or {})}
    builder = EmbedGroupWorkChain.get_builder_from_protocol(group, protocol=protocol, overrides=inputs)
    return _launch(builder, submit)

"""``verdi data matembed train CONFIG.yaml``: train a model and write its safetensors checkpoint + card."""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.utils import echo

from . import cmd_matembed


@cmd_matembed.command('train')
@click.argument('config', type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option('-o', '--output', type=click.Path(path_type=Path), help='Checkpoint stem (overrides the config).')
@click.option(
    '--data',
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='Train on this StructureSet .npz (e.g. from `verdi data matembed dataset build`) instead of the config data.',
)
@click.option('--epochs', type=click.IntRange(min=1), help='Number of epochs (overrides the config).')
@click.option('--max-steps', type=click.IntRange(min=1), help='At most this many steps per epoch (smoke runs).')
@click.option('--device', type=click.Choice(['auto', 'cpu', 'cuda']), help='Device (overrides the config).')
@click.option('--progress/--no-progress', default=True, show_default=True, help='Show a progress bar per epoch.')
def cmd_train(
    config: Path,
    output: Path | None,
    data: Path | None,
    epochs: int | None,
    max_steps: int | None,
    device: str | None,
    progress: bool,
) -> None:
    """Train the model described by CONFIG (YAML; see aiida_matembed.core.models.training).

    Prints the validation metrics of every epoch, stops early when the monitored metric stalls and
    writes OUTPUT.safetensors (weights) and OUTPUT.json (model card with the weights' sha256).
    """
    from ..core.models.training import TrainConfig, train

    try:
        cfg = TrainConfig.from_yaml(config)
        if output is not None:
            cfg.output = str(output)
        if data is not None:
            cfg.data = {**{k: v for k, v in cfg.data.items() if k not in ('train', 'build')}, 'train': str(data)}
        overrides = {'epochs': epochs, 'max_steps_per_epoch': max_steps, 'device': device}
        cfg.training.update({k: v for k, v in overrides.items() if v is not None})
        cfg = TrainConfig(**cfg.as_dict())  # validate the overrides
        result = train(cfg, progress=progress, log=echo.echo)
    except (ValueError, FileNotFoundError) as exc:
        echo.echo_critical(str(exc))
        return
    card = result.model.card
    metrics = ', '.join(f'{k}={v:.4g}' for k, v in card.metrics['validation'].items())
    echo.echo_success(f'{card.name} (epoch {result.best_epoch} of {len(result.history)}): {metrics}')
    echo.echo(f'weights {result.checkpoint} sha256 {card.sha256}')

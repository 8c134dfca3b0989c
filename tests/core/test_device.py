"""The device names and their resolution (one home for every layer)."""

import pytest
import torch

from aiida_matembed.core.device import DEVICE_NAMES, NoGpuError, check_device, resolve_device


@pytest.mark.parametrize('name', ['cpu', 'auto', 'cuda', 'cuda:0', 'cuda:12'])
def test_valid_names_pass_the_check_without_a_gpu(name):
    assert check_device(name) == name


@pytest.mark.parametrize('bad', ['gpu', 'CUDA', 'cuda:', 'cuda:x', 'mps', '', 3, True])
def test_bad_names_are_refused_with_the_choices(bad):
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"):
        check_device(bad)
    with pytest.raises(ValueError, match='device must be'):
        resolve_device(bad)


def test_resolution_on_this_computer():
    assert len(DEVICE_NAMES) == 4
    assert resolve_device(None) == torch.device('cpu') == resolve_device('cpu') == resolve_device(torch.device('cpu'))
    assert resolve_device('auto').type == ('cuda' if torch.cuda.is_available() else 'cpu')
    if torch.cuda.is_available():
        assert resolve_device('cuda').type == 'cuda'
        with pytest.raises(NoGpuError, match='GPU'):
            resolve_device(f'cuda:{torch.cuda.device_count()}')
    else:
        for name in ('cuda', 'cuda:1'):
            with pytest.raises(NoGpuError, match=rf"device '{name}' requested but torch .* sees no GPU"):
                resolve_device(name)

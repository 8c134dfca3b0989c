"""The tutorial (docs/tutorial.md) runs as written, on the test profile, and says what it prints."""

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).parents[1] / 'docs' / 'tutorial.md'


def _python_blocks() -> list[str]:
    return re.findall(r'```python\n(.*?)```', TUTORIAL.read_text(), flags=re.S)


def test_the_tutorial_runs(aiida_profile_clean, capsys):
    blocks = _python_blocks()
    assert len(blocks) == 5
    namespace: dict = {}
    for block in blocks:
        # the tutorial loads its own profile; here the test profile is loaded already
        exec(compile(block.replace("load_profile('tutorial')", ''), str(TUTORIAL), 'exec'), namespace)
    out = [line for line in capsys.readouterr().out.splitlines() if not line.startswith('Report:')]
    assert out[0] == "0 ['batch_0000']"  # what the tutorial's comment says
    assert out[2].startswith('XrdSettings(wavelength=')
    assert namespace['node'].is_finished_ok
    results = namespace['results']['results']
    (patterns,) = results.values()
    assert patterns.xrd_settings.wavelength == 'MoKa' and patterns.base.attributes.get('n_patterns') == 3


def test_xrd_group_refuses_bad_settings_before_anything_runs(aiida_profile_clean):
    from aiida import orm

    from aiida_matembed.launch import xrd_group

    orm.Group(label='empty').store()
    with pytest.raises(ValueError, match=r'unknown XRD setting\(s\)'):
        xrd_group('empty', {'wavelenght': 'CuKa'})

"""The README's main job runs on a real (temporary) profile, twice: the second run only reuses."""

from aiida_matembed import quickstart


def test_quickstart_runs_and_is_idempotent(aiida_profile_clean, capsys):
    assert quickstart.main(['--profile', aiida_profile_clean.name]) == 0
    first = capsys.readouterr().out
    assert 'stored 18 example structures' in first
    assert 'matembed.soap' in first and 'matembed.crystal_graph' in first
    assert 'Crystal graphs reloaded from CrystalGraphsData' in first and '17 graphs' in first
    assert 'normalised SOAP kernel' in first
    assert quickstart.main(['--profile', aiida_profile_clean.name]) == 0
    second = capsys.readouterr().out
    assert 'reusing group' in second and 'already up to date' in second

"""The README's main job runs on a real (temporary) profile, twice: the second run only reuses."""

from aiida_matembed import quickstart


def test_quickstart_runs_and_is_idempotent(aiida_profile_clean, capsys, tmp_path):
    argv = ['--profile', aiida_profile_clean.name, '--output-dir', str(tmp_path)]
    assert quickstart.main(argv) == 0
    first = capsys.readouterr().out
    assert 'stored 18 example structures' in first
    assert 'matembed.soap' in first and 'matembed.crystal_graph' in first
    assert 'Crystal graphs reloaded from CrystalGraphsData' in first and '17 graphs' in first
    assert 'normalised SOAP kernel' in first
    assert '18 patterns, 0 failed' in first and 'NaCl strongest lines: 31.73°' in first  # (200), conventional cell
    plot = tmp_path / 'xrd_NaCl_CuKa.png'
    assert plot.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert 'Learned models as nodes: ModelData<' in first
    assert 'matembed.cmml from structure: EmbedGroupWorkChain<' in first and '(18 x 256, 1 failed)' in first
    assert 'matembed.cmml from xrd' in first and 'matembed.xrd_symmetry from xrd' in first
    assert '(18 x 237, 0 failed)' in first
    assert 'XRD pattern -> its own structure first:' in first and 'of 17' in first
    assert 'CuAu (disordered fcc)' in first and 'disordered' in first
    assert 'cosine distance' in first and 'best match LiCoO2' in first and "phases ['LiCoO2']" in first
    assert 'PwRelaxWorkChain<' in first and ': exit status 0' in first  # pw.x, installed by scripts/setup_env.sh
    assert 'relaxed Si (StructureData<' in first and 'Magpie features in FeaturesData<' in first
    assert quickstart.main(argv) == 0
    second = capsys.readouterr().out
    assert 'reusing group' in second and 'already up to date' in second
    assert 'cached: same structures and settings already simulated' in second
    assert second.count('stored nothing new') == 3  # the embeddings are incremental too
    assert 'matembed.cmml has produced 2 FeaturesData node(s)' in second
    assert "reusing group 'matembed/examples-dft': 1 relaxation(s)" in second

"""The main job of the README: featurise and simulate XRD of the example structures, stored with provenance.

Also writes one XRD plot (``quickstart_output/xrd_NaCl_CuKa.png``).

Run as ``python -m aiida_matembed.quickstart --profile NAME`` (``scripts/quickstart.sh`` creates the
profile first). Idempotent: a second run reuses the stored structures and skips finished work.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

GROUP_LABEL = 'matembed/examples'
REPRESENTATIONS: list[tuple[str, dict[str, Any]]] = [
    ('matembed.magpie', {}),
    ('matembed.element_fraction', {}),
    ('matembed.element_embedding', {'table': 'mat2vec', 'stats': ['mean', 'variance', 'minpool', 'maxpool']}),
    ('matembed.element_embedding', {'table': 'megnet16', 'stats': ['mean', 'range']}),
    ('matembed.soap', {'cutoff': 5.0, 'n_max': 4, 'l_max': 3}),
    ('matembed.rdf', {'cutoff': 8.0, 'bin_size': 0.1}),
    ('matembed.sine_matrix', {'max_sites': 32}),
    ('matembed.crystal_graph', {}),
]
STORE_GRAPHS = {'matembed.crystal_graph'}


def main(argv: list[str] | None = None) -> int:
    """Run the main job on ``--profile``; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--profile', required=True, help='AiiDA profile to use (never the default implicitly)')
    parser.add_argument('--output-dir', default='quickstart_output', help='folder for the XRD plot (created)')
    args = parser.parse_args(argv)

    import numpy as np
    from aiida import load_profile, orm
    from aiida.common.exceptions import NotExistent
    from aiida.engine import run_get_node

    load_profile(args.profile, allow_switch=True)
    from aiida_matembed.core.datasets import load_example_structures
    from aiida_matembed.query import get_features
    from aiida_matembed.workflows import FeaturizeGroupWorkChain

    group, created = orm.Group.collection.get_or_create(label=GROUP_LABEL)
    if created or group.count() == 0:
        group.description = 'Example structures shipped with aiida-matembed'
        nodes = []
        for example in load_example_structures():
            node = orm.StructureData(pymatgen=example.structure)
            node.label = example.label
            node.base.extras.set('aflow_prototype', example.aflow)
            nodes.append(node.store())
        group.add_nodes(nodes)
        print(f'stored {len(nodes)} example structures in group {GROUP_LABEL!r} (pk {group.pk})')
    else:
        print(f'reusing group {GROUP_LABEL!r} (pk {group.pk}) with {group.count()} structures')

    print('\nFeaturising (FeaturizeGroupWorkChain, one batched calcfunction per representation):')
    for name, params in REPRESENTATIONS:
        inputs: dict[str, Any] = {
            'group': orm.Str(group.uuid),
            'representation': orm.Str(name),
            'parameters': orm.Dict(params),
            'store_graphs': orm.Bool(name in STORE_GRAPHS),
        }
        outputs, process = run_get_node(FeaturizeGroupWorkChain, **inputs)
        if not process.is_finished_ok:
            print(f'  {name}: FAILED ({process.exit_message})', file=sys.stderr)
            return 1
        for features in outputs.get('features', {}).values():
            attrs = features.base.attributes
            print(
                f'  {name:<27} {params or ""}\n      -> FeaturesData<{features.pk}> {attrs.get("n_rows")} x '
                f'{attrs.get("n_features")}, {attrs.get("n_failed")} failed rows, created by '
                f'{features.creator.process_label}<{features.creator.pk}> inside WorkChain<{process.pk}>'
            )
        if not outputs.get('features'):
            print(f'  {name:<27} {params or ""}\n      -> already up to date (incremental: nothing to do)')

    structures = {n.label: n for n in group.nodes if isinstance(n, orm.StructureData)}
    query = 'LiCoO2 (alpha-NaFeO2 type)'
    for name, params, what, standardise in [
        ('matembed.magpie', {}, 'standardised Magpie features (composition)', True),
        ('matembed.soap', REPRESENTATIONS[4][1], 'averaged SOAP, i.e. the normalised SOAP kernel (structure)', False),
    ]:
        names, rows = [], []
        for label in sorted(structures):
            try:
                rows.append(get_features(structures[label], name, params=params))
                names.append(label)
            except NotExistent:  # e.g. SOAP needs ordered structures: the disordered example has no row
                continue
        matrix = np.array(rows)
        scaled = (matrix - matrix.mean(0)) / (matrix.std(0) + 1e-12) if standardise else matrix
        t = scaled[names.index(query)]
        cosine = scaled @ t / (np.linalg.norm(scaled, axis=1) * np.linalg.norm(t) + 1e-300)
        print(f'\nMost similar to {query} by cosine similarity of {what}, queried from the graph:')
        for i in [i for i in np.argsort(-cosine) if names[i] != query][:3]:
            print(f'  {names[i]:<28} {cosine[i]:.3f}')

    from torch_geometric.data import Batch

    from aiida_matembed.data import CrystalGraphsData

    stored_graphs = (
        orm.QueryBuilder()
        .append(CrystalGraphsData, filters={'attributes.representation': 'matembed.crystal_graph'})
        .all(flat=True)
    )
    graphs = max(stored_graphs, key=lambda node: node.base.attributes.get('n_graphs'), default=None)
    if graphs is not None:
        batch = Batch.from_data_list(graphs.to_pyg())
        print(
            f'\nCrystal graphs reloaded from CrystalGraphsData<{graphs.pk}> as one torch-geometric Batch: '
            f'{batch.num_graphs} graphs, {batch.num_nodes} nodes, {batch.edge_index.shape[1]} edges, '
            f'node features {tuple(batch.x.shape)}, edge features {tuple(batch.edge_attr.shape)}'
        )

    _simulate_xrd(group, args.output_dir)
    _learned_models(group)
    _search_and_identify(group, args.output_dir)
    _dft_next_to_ml(args.output_dir)

    print(
        '\nHow to query what was stored:\n'
        f'  verdi data matembed representations\n'
        f'  verdi process list -a -p 1\n'
        f'  verdi data matembed show <FeaturesData pk>\n'
        f'  verdi data matembed xrd -G {GROUP_LABEL} --wavelength MoKa --plot mo.png --export xy/\n'
        f'  verdi data matembed export <FeaturesData pk> -f csv -o features.csv\n'
        f'  verdi data matembed screen -G <candidates> -k 2 --rounds 1 --target energy_per_atom -r matembed.magpie\n'
        f'  verdi data matembed models list; verdi data matembed models show matembed.cmml\n'
        f'  verdi data matembed embed -G {GROUP_LABEL} -m matembed.xrd_vae            # 2D map coordinates\n'
        f'  verdi data matembed embed -G {GROUP_LABEL} -m matembed.cmml -Y localhost  # through the worker CalcJob\n'
        f"  python -c \"from aiida import load_profile; load_profile('{args.profile}');\n"
        f'    from aiida_matembed.query import get_embedding, featurized_structures, model_embeddings;\n'
        f"    print(len(featurized_structures('matembed.magpie')), len(model_embeddings('matembed.cmml')))\"\n"
        '  (set AIIDA_PATH as scripts/quickstart.sh printed, and pass -p to verdi)'
    )
    return 0


def _simulate_xrd(group: Any, output_dir: str) -> None:
    """Simulate and store the Cu K-alpha patterns of the group (cached on a re-run), plot NaCl's."""
    from pathlib import Path

    from aiida import orm

    from aiida_matembed.calculations import simulate_xrd_structures
    from aiida_matembed.core.xrd.plot import plot_pattern

    nodes = sorted((n for n in group.nodes if isinstance(n, orm.StructureData)), key=lambda n: n.pk or 0)
    patterns, process = simulate_xrd_structures(nodes, {'wavelength': 'CuKa'})
    cached = (
        ' (cached: same structures and settings already simulated)'
        if process.base.caching.is_created_from_cache
        else ''
    )
    print(
        f'\nPowder XRD (Cu K-alpha, 10-110°, 5001 points): XrdPatternsData<{patterns.pk}> '
        f'{len(patterns.rows)} patterns, {patterns.base.attributes.get("n_failed")} failed, '
        f'created by {process.process_label}<{process.pk}>{cached}'
    )
    row = next(i for i, n in enumerate(nodes) if n.label == 'NaCl')
    peaks = patterns.peaks(row)
    strongest = peaks.intensity.argsort()[::-1][:3]
    lines = ', '.join(
        f'{peaks.two_theta[k]:.2f}° {next(iter(peaks.hkls[k]))} ({peaks.intensity[k]:.0f})' for k in sorted(strongest)
    )
    print(f'  NaCl strongest lines: {lines}')
    path = Path(output_dir) / 'xrd_NaCl_CuKa.png'
    path.parent.mkdir(parents=True, exist_ok=True)
    plot_pattern(patterns.grid, patterns.profiles[row], peaks, title='NaCl, Cu K-alpha (simulated)', path=path)
    print(f'  plot of the NaCl pattern (profile, sticks, hkl labels): {path}')


def _learned_models(group: Any) -> None:
    """Embed the Group with ``matembed.cmml`` and classify it with ``matembed.xrd_symmetry``, stored with provenance.

    Both models are imported as ``matembed.model`` nodes (checksums verified, once); the
    ``matembed.embed_group`` WorkChain stores one ``FeaturesData`` per batch whose creator has the model node
    as input (incremental: a second run embeds nothing). The ranks and predictions printed are read back from
    the stored vectors through the provenance graph.
    """
    import numpy as np
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.engine import run_get_node
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from aiida_matembed.core.models import CRYSTAL_SYSTEMS
    from aiida_matembed.data import import_model
    from aiida_matembed.query import get_embedding, model_embeddings
    from aiida_matembed.workflows import EmbedGroupWorkChain

    nodes = sorted((n for n in group.nodes if isinstance(n, orm.StructureData)), key=lambda n: n.pk or 0)
    cmml, symmetry = import_model('matembed.cmml'), import_model('matembed.xrd_symmetry')
    print(
        f'\nLearned models as nodes: ModelData<{cmml.pk}> {cmml.name} (sha256 {cmml.sha256[:12]}), '
        f'ModelData<{symmetry.pk}> {symmetry.name} (sha256 {symmetry.sha256[:12]})'
    )
    for model, modality in ((cmml, 'structure'), (cmml, 'xrd'), (symmetry, 'xrd')):
        outputs, workchain = run_get_node(
            EmbedGroupWorkChain,
            group=orm.Str(group.uuid),
            model=model,
            parameters=orm.Dict({'modality': modality}),
            device=orm.Str('cpu'),
        )
        made = ', '.join(
            f'FeaturesData<{f.pk}> ({f.base.attributes.get("n_rows")} x {f.base.attributes.get("n_features")}, '
            f'{f.base.attributes.get("n_failed")} failed)'
            for f in outputs.get('results', {}).values()
        )
        print(f'  {model.name} from {modality}: EmbedGroupWorkChain<{workchain.pk}> stored {made or "nothing new"}')
    print(f'  {cmml.name} has produced {len(model_embeddings(cmml))} FeaturesData node(s) (query by model node)')

    def stored(node: orm.StructureData, model: Any, modality: str) -> np.ndarray | None:
        try:
            return get_embedding(node, model, modality=modality)
        except NotExistent:  # a recorded failure, e.g. partial occupancy for the crystal graph
            return None

    from_structures = [stored(n, cmml, 'structure') for n in nodes]
    ordered = [i for i, v in enumerate(from_structures) if v is not None]
    graph_vectors = np.stack([v for v in from_structures if v is not None])
    xrd_vectors = np.stack([get_embedding(nodes[i], cmml, modality='xrd') for i in ordered])
    similarity = xrd_vectors @ graph_vectors.T
    rank = (similarity > similarity.diagonal()[:, None]).sum(axis=1)
    print(f'  {"structure":<28}{"XRD->structure rank":>20}  {"space group (spglib)":>21}  predicted (top-5)')
    for i, node in enumerate(nodes):
        structure = node.get_pymatgen()
        truth = SpacegroupAnalyzer(structure, symprec=0.01).get_space_group_number() if i in ordered else 0
        where = f'{int(rank[ordered.index(i)]) + 1} of {len(ordered)}' if i in ordered else 'disordered'
        probabilities = stored(node, symmetry, 'xrd')
        if probabilities is None:
            predicted = 'failed'
        else:
            system = CRYSTAL_SYSTEMS[int(np.argmax(probabilities[:7]))]
            predicted = f'{system} ' + ' '.join(str(g + 1) for g in np.argsort(-probabilities[7:], kind='stable')[:5])
        print(f'  {node.label:<28}{where:>20}  {truth or "-":>21}  {predicted}')
    hits = int((rank == 0).sum())
    print(f'  XRD pattern -> its own structure first: {hits} of {len(ordered)}')


def _search_and_identify(group: Any, output_dir: str) -> None:
    """Nearest neighbours of LiCoO2 through the search index, and a 'measured' pattern identified among the Group."""
    from pathlib import Path

    from aiida import orm

    from aiida_matembed.core.xrd import MeasuredPattern, XrdAugmentation, XrdSimulator
    from aiida_matembed.identify import identify_in_group
    from aiida_matembed.search import VectorSource, similar_structures

    nodes = {n.label: n for n in group.nodes if isinstance(n, orm.StructureData)}
    query = nodes['LiCoO2 (alpha-NaFeO2 type)']
    found = similar_structures(query, group, VectorSource(representation='matembed.magpie'), k=3)
    print('\nverdi data matembed search <LiCoO2 pk> -G matembed/examples -r matembed.magpie -k 3:')
    for n in found:
        print(f'  {n.formula:<10} pk {n.pk:<6} cosine distance {n.distance:.4f}')
    # a 'measured' pattern: LiCoO2 expanded by 1.5 %, with K-alpha2, zero shift, texture, background and noise
    strained = query.get_pymatgen().copy()
    strained.scale_lattice(strained.volume * 1.015**3)
    simulator = XrdSimulator('CuKa', (10, 110), doublet=True)
    augment = XrdAugmentation(noise=0.01, background=0.05, zero_shift=0.08, preferred_orientation=(0.8, 1.2))
    grid, profiles = simulator.profiles_many([strained], augment=augment, seed=3)
    result, summary, _ = identify_in_group(MeasuredPattern(grid, profiles[0] * 1e4, None, 'LiCoO2-like'), group)
    best = summary['matches'][0]
    print(
        f'verdi data matembed identify measured.xy -G matembed/examples: best match {best["formula"]} '
        f'(score {best["score"]:.2f}, d scale {best["d_scale"]:.3f}, zero shift {best["zero_shift"]:+.3f}°), '
        f'phases {[p["formula"] for p in summary["phases"]]}'
    )
    from aiida_matembed.core.search.identify import plot_identification

    path = Path(output_dir) / 'identify_LiCoO2.png'
    plot_identification(result, path=path, title='LiCoO2-like pattern identified among the examples')
    print(f'  plot of the fit: {path}')


DFT_GROUP_LABEL = 'matembed/examples-dft'


def _dft_next_to_ml(output_dir: str) -> None:
    """Relax Si with pw.x (aiida-quantumespresso), featurise the relaxed structure, query both in one call."""
    import shutil
    from pathlib import Path

    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_matembed.dft.setup import DEBIAN_PSEUDO_DIR, setup_dft

    print('\nDFT next to the representations (pw.x through aiida-quantumespresso):')
    if shutil.which('pw.x') is None or not DEBIAN_PSEUDO_DIR.is_dir():
        print('  skipped: pw.x is not installed (apt-get install quantum-espresso quantum-espresso-data)')
        return
    try:
        from aiida.plugins import WorkflowFactory

        relax = WorkflowFactory('quantumespresso.pw.relax')
    except Exception:
        print('  skipped: aiida-quantumespresso is not installed (pip install "aiida-matembed[dft]")')
        return
    from pymatgen.core import Lattice, Structure

    from aiida_matembed.query import dft_feature_table
    from aiida_matembed.workflows import FeaturizeGroupWorkChain

    try:
        computer = orm.load_computer('localhost')
    except Exception:  # a profile without the computer verdi presto makes
        workdir = Path(output_dir).resolve() / 'scratch'
        computer = orm.Computer(
            label='localhost', hostname='localhost', transport_type='core.local', scheduler_type='core.direct',
            workdir=str(workdir),
        ).store()  # fmt: skip
        computer.set_default_mpiprocs_per_machine(1)
        computer.configure()
    setup = setup_dft(computer)
    families = ', '.join(family.label for family in setup['families'].values())
    print(f'  code {setup["code"].full_label}; pseudopotential families {families}')
    group, _ = orm.Group.collection.get_or_create(label=DFT_GROUP_LABEL)
    if not group.count():
        silicon = Structure.from_spacegroup('Fd-3m', Lattice.cubic(5.6), ['Si'], [[0, 0, 0]]).get_primitive_structure()
        family = 'matembed/debian-qe/PBE'
        cheap = {'pw': {'parameters': {'SYSTEM': {'ecutwfc': 16, 'ecutrho': 64}}}, 'kpoints_distance': 0.5}
        builder = relax.get_builder_from_protocol(  # type: ignore[union-attr]
            setup['code'],
            orm.StructureData(pymatgen=silicon),
            protocol='fast',
            overrides={'base_relax': {'pseudo_family': family, **cheap}, 'base_init_relax': {'pseudo_family': family}},
            options={'resources': {'num_machines': 1, 'num_mpiprocs_per_machine': 1}},
        )
        _, node = run_get_node(builder)
        group.add_nodes(node)
        print(f'  {node.process_label}<{node.pk}> of Si: exit status {node.exit_status}')
    else:
        print(f'  reusing group {DFT_GROUP_LABEL!r}: {group.count()} relaxation(s)')
    run_get_node(FeaturizeGroupWorkChain, group=orm.Str(DFT_GROUP_LABEL), representation=orm.Str('matembed.magpie'))
    for row in dft_feature_table(DFT_GROUP_LABEL, 'matembed.magpie', process_class=relax):
        volume = orm.load_node(row['structure']).get_pymatgen_structure().volume
        print(
            f'  relaxed Si (StructureData<{row["structure"]}>, {volume:.2f} Å^3): energy {row["energy"]:.4f} eV, '
            f'Magpie features in FeaturesData<{row["features"]}> (mean Z {row["vector"][3]:.1f})'
        )
    print(
        f'  verdi data matembed train-property -G {DFT_GROUP_LABEL} --target band_gap -r matembed.magpie  # needs >= 2'
    )


if __name__ == '__main__':
    raise SystemExit(main())

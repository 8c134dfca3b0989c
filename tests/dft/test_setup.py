"""The local Quantum ESPRESSO set-up from Debian's UPF files (real files, real aiida-pseudo families)."""

import pytest

from aiida_matembed.dft.setup import (
    DEBIAN_PSEUDO_DIR,
    MissingPseudopotentialError,
    check_family_covers,
    family_label,
    scan_pseudopotentials,
    setup_dft,
)

pytestmark = pytest.mark.skipif(
    not DEBIAN_PSEUDO_DIR.is_dir(), reason='needs Debian quantum-espresso-data (scripts/setup_env.sh installs it)'
)


def test_scan_reads_element_functional_type_and_cutoffs_from_the_headers():
    scanned = scan_pseudopotentials()
    assert set(scanned) == {'LDA', 'PBE', 'PBEsol'}
    si = scanned['PBE']['Si']
    assert si.path.name == 'Si.pbe-rrkj.UPF'  # norm-conserving preferred over the ultrasoft psl file
    assert si.pseudo_type == 'NC'
    assert si.cutoffs() == (30.0, 120.0)  # no suggestion in the file: the NC defaults
    boron = scanned['PBE']['B']
    assert boron.pseudo_type == 'US'
    assert boron.cutoffs() == (43.0, 344.0)  # pslibrary's suggested 43 Ry, rho 8x (file says 325: the larger wins)
    assert scanned['LDA']['Al'].path.name == 'Al.pz-vbc.UPF'
    for functional in scanned.values():
        for element, pseudo in functional.items():
            assert pseudo.element == element
            assert 'rel-' not in pseudo.path.name  # fully relativistic files are left out
    assert 'Na' not in scanned['PBE'] and 'Cl' not in scanned['PBE']


def test_setup_is_idempotent_and_gives_protocol_ready_families(aiida_profile_clean, aiida_localhost):
    first = setup_dft(aiida_localhost)
    again = setup_dft(aiida_localhost)
    assert first['code'].pk == again['code'].pk
    assert {k: v.pk for k, v in first['families'].items()} == {k: v.pk for k, v in again['families'].items()}
    code = first['code']
    assert code.default_calc_job_plugin == 'quantumespresso.pw'
    assert 'OMPI_ALLOW_RUN_AS_ROOT=1' in code.prepend_text
    pbe = first['families']['PBE']
    assert pbe.label == family_label('PBE')
    assert pbe.get_recommended_cutoffs(elements=('Si',), unit='Ry') == (30.0, 120.0)
    assert pbe.get_recommended_cutoffs(elements=('Si',), stringency='low', unit='Ry') == (22.5, 90.0)
    assert pbe.get_pseudo('Si').filename == 'Si.upf'


def test_missing_element_names_the_element_and_the_family(aiida_profile_clean, aiida_localhost):
    families = setup_dft(aiida_localhost)['families']
    with pytest.raises(MissingPseudopotentialError, match=r'matembed/debian-qe/PBE.*element\(s\) Cl, Na'):
        check_family_covers(families['PBE'], ['Na', 'Cl', 'Si'])
    check_family_covers(families['PBE'], ['Si'])


def test_unknown_folder_says_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match='apt-get install -y quantum-espresso-data'):
        scan_pseudopotentials(tmp_path / 'nothing')

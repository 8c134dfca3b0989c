"""The aiida-core patches of ``calculations.bulk_links``: guarded by the source of what they replace."""

import pytest


def test_the_replaced_aiida_functions_are_the_ones_measured():
    """Fails when aiida-core changes a function link_inputs_in_bulk replaces: re-read it, re-measure, re-hash."""
    from aiida_matembed.calculations.bulk_links import changed_aiida_functions

    assert changed_aiida_functions() == ()


def test_a_changed_aiida_core_keeps_its_own_linking_and_the_hook(monkeypatch, aiida_profile_clean):
    from aiida import orm
    from aiida.engine import calcfunction

    from aiida_matembed.calculations import bulk_links

    monkeypatch.setattr(
        bulk_links, 'changed_aiida_functions', lambda: ('aiida.engine.processes.process:Process._setup_inputs',)
    )
    seen = []

    @calcfunction
    def count(**kwargs):
        return orm.Int(len(kwargs['structures']))

    with pytest.warns(UserWarning, match='links its inputs one by one'):
        bulk_links.link_inputs_in_bulk(count, after_inputs=lambda process: seen.append(process.node.is_stored))
    assert count.process_class._setup_inputs is not bulk_links._setup_inputs_in_bulk
    nodes = {f's{i}': orm.Int(i).store() for i in range(3)}
    result, node = count.run_get_node(structures=nodes)
    assert result.value == 3 and seen == [False]
    assert len(node.base.links.get_incoming().all()) == 3

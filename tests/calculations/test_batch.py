"""Bulk helpers of ``calculations.batch``: loading many nodes, their attribute rows, detaching them."""

import pytest
from aiida import orm

from aiida_matembed.calculations.batch import (
    detach_from_session,
    load_nodes,
    reattach_to_session,
    structure_rows,
)


def _session():
    from aiida.manage import get_manager

    return get_manager().get_profile_storage().get_session()


@pytest.fixture
def stored(aiida_profile_clean, examples):
    return [orm.StructureData(pymatgen=e.structure).store() for e in examples if e.structure.is_ordered][:4]


def test_load_nodes_keeps_the_order_and_reads_attributes_on_access(stored):
    pks = [stored[2].pk, stored[0].pk, stored[3].pk]
    loaded = load_nodes(pks)
    assert [n.pk for n in loaded] == pks and [n.uuid for n in loaded] == [stored[i].uuid for i in (2, 0, 3)]
    assert all(type(n) is orm.StructureData for n in loaded)
    # attributes were not decoded by the load, but read as usual on access
    assert loaded[0].get_pymatgen() == stored[2].get_pymatgen()


def test_load_nodes_refuses_unknown_pks_and_other_classes(stored):
    other = orm.Int(3).store()
    with pytest.raises(ValueError, match='no stored node with pk'):
        load_nodes([stored[0].pk, 10**9])
    with pytest.raises(ValueError, match='not StructureData'):
        load_nodes([stored[0].pk, other.pk])


def test_structure_rows_equal_the_querybuilder_projection(stored):
    pks = [n.pk for n in stored]
    rows = structure_rows(pks)
    query = orm.QueryBuilder().append(
        orm.StructureData, filters={'id': {'in': pks}}, project=['id', 'uuid', 'attributes']
    )
    assert rows == {pk: (uuid, attributes) for pk, uuid, attributes in query.all()}


def test_load_nodes_can_skip_missing_and_other_nodes(stored):
    other = orm.Int(3).store()
    loaded = load_nodes([stored[1].pk, 10**9, other.pk, stored[0].pk], missing='skip')
    assert [n.pk for n in loaded] == [stored[1].pk, stored[0].pk]
    with pytest.raises(ValueError, match='missing'):
        load_nodes([stored[0].pk], missing='ignore')


def test_detached_nodes_stay_out_of_commits_and_come_back_usable(stored):
    from sqlalchemy import inspect as sa_inspect

    session = _session()
    expected = [n.get_pymatgen() for n in stored]
    models = detach_from_session(stored)
    assert len(models) == len(stored) and all(sa_inspect(m).detached for m in models)
    orm.Int(6).store()  # a commit while they are out: nothing of theirs is expired or reloaded
    assert [n.pk for n in stored] == [sa_inspect(m).identity[0] for m in models]  # pk and UUID stay readable
    assert stored[0].uuid == orm.load_node(stored[0].pk).uuid
    assert reattach_to_session(models) == len(stored)
    assert all(m in session for m in models)
    assert [n.get_pymatgen() for n in stored] == expected  # attributes load again on access
    stored[0].base.extras.set('tag', 'back')  # and the nodes can be changed again
    assert orm.load_node(stored[0].pk).base.extras.get('tag') == 'back'


def test_unstored_or_changed_nodes_are_not_detached(aiida_profile_clean):
    unstored = orm.Int(1)
    assert detach_from_session([unstored]) == []
    assert reattach_to_session([]) == 0


def test_generic_path_without_sqlalchemy_gives_the_same(stored, monkeypatch):
    """Storage backends without a SQLAlchemy session take the QueryBuilder path (forced here: the profile is SQLite)."""
    from aiida_matembed.calculations import batch

    pks = [stored[1].pk, stored[0].pk]
    fast_rows, fast_nodes = structure_rows(pks), [n.uuid for n in load_nodes(pks)]
    monkeypatch.setattr(batch, '_node_model', lambda: None)
    monkeypatch.setattr(batch, '_session', lambda: None)
    assert structure_rows(pks) == fast_rows
    assert [n.uuid for n in load_nodes(pks)] == fast_nodes
    assert load_nodes([10**9, pks[0]], missing='skip')[0].pk == pks[0]
    assert detach_from_session(stored) == [] and reattach_to_session([object()]) == 0

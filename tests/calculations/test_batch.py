"""Bulk helpers of ``calculations.batch``: loading many nodes, their attribute rows, and the session hold."""

import pytest
from aiida import orm

from aiida_matembed.calculations.batch import (
    hold_loaded_state,
    keep_loaded_state,
    load_nodes,
    release_loaded_state,
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


def test_holds_nest_and_restore_the_session_setting(aiida_profile_clean):
    session = _session()
    assert session.expire_on_commit is True
    with keep_loaded_state():
        assert session.expire_on_commit is False
        hold_loaded_state()
        release_loaded_state()
        assert session.expire_on_commit is False  # the outer hold is still there
    assert session.expire_on_commit is True
    release_loaded_state()  # an unmatched release is a no-op
    assert session.expire_on_commit is True


def test_fields_changed_by_another_connection_are_read_fresh_during_a_hold(aiida_profile_clean):
    """Why the hold is safe: aiida-core re-reads a mutable field from the database at every access."""
    from sqlalchemy import update

    node = orm.Int(5).store()
    node.label = 'before'
    model = type(node.backend_entity.bare_model)
    with keep_loaded_state():
        orm.Int(6).store()  # a commit during the hold: nothing is expired
        with _session().get_bind().begin() as connection:  # another connection changes the row
            connection.execute(update(model).where(model.id == node.pk).values(label='after'))
        assert node.label == 'after'

"""Daemon throughput: Group WorkChains through 2 daemon workers (PostgreSQL + RabbitMQ) vs the same work in-process.

Run:  bash scripts/setup_services.sh start
      python benchmarks/bench_daemon.py load [--workchains 100 --batches 10 --batch-size 2]
      python benchmarks/bench_daemon.py storage [--n 10000 --batch-size 2000]

``load``: W FeaturizeGroupWorkChains (Magpie) of B batches each, i.e. W x (B + 1) processes, all submitted at
once to a daemon with 2 workers; then the same work (new, distinct structures) run in this process one WorkChain
after the other. Prints processes/s and structures/s of both, their ratio, and checks 0 lost / 0 duplicated
(every structure exactly one successful row) and no process left running.
``storage``: the 10,000-structure featurisation (FeaturizeGroupWorkChain in-process, batches of 2,000) on
PostgreSQL and on SQLite.
Everything lives in a throw-away AIIDA_PATH and a PostgreSQL database of its own (dropped at the end).
"""

import argparse
import collections
import os
import platform
import secrets
import sys
import tempfile
import time

PG = {
    'host': os.environ.get('MATEMBED_PG_HOST', '127.0.0.1'),
    'port': int(os.environ.get('MATEMBED_PG_PORT', '5432')),
    'user': os.environ.get('MATEMBED_PG_USER', 'aiida_matembed'),
    'password': os.environ.get('MATEMBED_PG_PASSWORD', 'aiida_matembed'),
}


def psql(sql):
    import psycopg

    with psycopg.connect(dbname='postgres', autocommit=True, **PG) as connection:
        connection.execute(sql)


def make_profile(config, backend, name):
    from aiida.manage.configuration import create_profile

    if backend == 'core.psql_dos':
        psql(
            f"CREATE DATABASE {name} OWNER {PG['user']} TEMPLATE template0 ENCODING 'UTF8' "
            "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
        )
        storage = {
            'database_engine': 'postgresql_psycopg',
            'database_hostname': PG['host'],
            'database_port': PG['port'],
            'database_username': PG['user'],
            'database_password': PG['password'],
            'database_name': name,
            'repository_uri': f'file://{config.dirpath}/{name}-repository',
        }
        broker = {
            'broker_protocol': 'amqp',
            'broker_username': 'guest',
            'broker_password': 'guest',
            'broker_host': '127.0.0.1',
            'broker_port': 5672,
            'broker_virtual_host': '',
        }
        profile = create_profile(
            config,
            name=name,
            email='bench@localhost',
            storage_backend=backend,
            storage_config=storage,
            broker_backend='core.rabbitmq',
            broker_config=broker,
        )
        profile.set_option('warnings.rabbitmq_version', False)
        profile.set_option('daemon.timeout', 30)
    else:
        profile = create_profile(
            config,
            name=name,
            email='bench@localhost',
            storage_backend=backend,
            storage_config={'filepath': f'{config.dirpath}/{name}'},
        )
    config.update_profile(profile)
    config.store()
    return profile


def structures(n, offset=0):
    """``n`` distinct structures: the 288 AFLOW prototypes, rescaled (distinct hashes, so no cache hits)."""
    from aiida_matembed.core.datasets import load_aflow_prototypes

    prototypes = [p.structure for p in load_aflow_prototypes()]
    out = []
    for i in range(offset, offset + n):
        structure = prototypes[i % len(prototypes)].copy()
        structure.scale_lattice(structure.volume * (1 + 0.001 * (1 + i // len(prototypes))))
        out.append(structure)
    return out


def store_groups(prefix, items, per_group):
    from aiida import orm
    from aiida.manage import get_manager

    storage = get_manager().get_profile_storage()
    groups = []
    with storage.transaction():
        nodes = [orm.StructureData(pymatgen=s).store() for s in items]
    for start in range(0, len(nodes), per_group):
        group = orm.Group(label=f'{prefix}-{start // per_group:04d}').store()
        group.add_nodes(nodes[start : start + per_group])
        groups.append(group)
    return groups


def exactly_once(groups):
    """(lost, duplicated) structures over the groups (successful rows of processes that finished ok)."""
    from aiida import orm

    from aiida_matembed.data import FeaturesData

    lost = duplicated = 0
    for group in groups:
        pks = [n.pk for n in group.nodes]
        qb = orm.QueryBuilder()
        qb.append(FeaturesData, filters={'attributes.representation': 'matembed.magpie'}, tag='f')
        qb.append(orm.CalculationNode, with_outgoing='f', filters={'attributes.exit_status': 0}, tag='p')
        qb.append(orm.StructureData, with_outgoing='p', filters={'id': {'in': pks}}, project='id')
        counts = collections.Counter(qb.all(flat=True))
        lost += sum(1 for pk in pks if counts[pk] == 0)
        duplicated += sum(1 for pk in pks if counts[pk] > 1)
    return lost, duplicated


def active():
    from aiida import orm

    filters = {'attributes.process_state': {'in': ['created', 'running', 'waiting']}}
    return orm.QueryBuilder().append(orm.ProcessNode, filters=filters).count()


def inputs_of(group, batch_size):
    from aiida import orm

    return {
        'group': orm.Str(group.uuid),
        'representation': orm.Str('matembed.magpie'),
        'batch_size': orm.Int(batch_size),
    }


def load(args, config):
    from aiida import load_profile
    from aiida.engine import run_get_node, submit
    from aiida.engine.daemon.client import get_daemon_client

    from aiida_matembed.workflows import FeaturizeGroupWorkChain

    name = f'matembed_bench_{secrets.token_hex(4)}'
    make_profile(config, 'core.psql_dos', name)
    load_profile(name, allow_switch=True)
    per_group = args.batches * args.batch_size
    n = args.workchains * per_group
    n_processes = args.workchains * (args.batches + 1)
    client = get_daemon_client(name)
    try:
        daemon_groups = store_groups('daemon', structures(n), per_group)
        inline_groups = store_groups('inline', structures(n, offset=n), per_group)
        print(f'{args.workchains} WorkChains x {args.batches} batches of {args.batch_size}: {n_processes} processes, '
              f'{n} structures per run')  # fmt: skip
        client.start_daemon(number_workers=2)
        start = time.perf_counter()
        nodes = [submit(FeaturizeGroupWorkChain, **inputs_of(g, args.batch_size)) for g in daemon_groups]
        deadline = time.monotonic() + args.timeout
        while not all(node.is_terminated for node in nodes):
            if time.monotonic() > deadline:
                raise SystemExit(f'timed out after {args.timeout} s')
            time.sleep(0.5)
        t_daemon = time.perf_counter() - start
        ok = sum(node.is_finished_ok for node in nodes)
        lost, duplicated = exactly_once(daemon_groups)
        print(f'daemon (2 workers, PostgreSQL + RabbitMQ): {t_daemon:.1f} s = {n_processes / t_daemon:.1f} '
              f'processes/s, {n / t_daemon:.1f} structures/s; {ok}/{len(nodes)} finished ok, {lost} lost, '
              f'{duplicated} duplicated, {active()} left active')  # fmt: skip
        stop(client)

        start = time.perf_counter()
        finished = 0
        for group in inline_groups:
            _, node = run_get_node(FeaturizeGroupWorkChain, **inputs_of(group, args.batch_size))
            finished += node.is_finished_ok
        t_inline = time.perf_counter() - start
        lost, duplicated = exactly_once(inline_groups)
        print(f'in-process (one Python process, same profile): {t_inline:.1f} s = {n_processes / t_inline:.1f} '
              f'processes/s, {n / t_inline:.1f} structures/s; {finished}/{len(inline_groups)} finished ok, '
              f'{lost} lost, {duplicated} duplicated')  # fmt: skip
        print(f'daemon / in-process throughput: {t_inline / t_daemon:.2f}x')
    finally:
        stop(client)
        from aiida.manage import get_manager

        get_manager().unload_profile()
        psql(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')


def stop(client):
    """Stop the daemon started here; kill its process tree (by pid) if circus does not answer in 30 s."""
    from aiida_matembed.testing.daemon import stop_daemon

    stop_daemon(client, timeout=30)


def storage(args, config):
    from aiida import load_profile
    from aiida.engine import run_get_node
    from aiida.manage import get_manager

    from aiida_matembed.workflows import FeaturizeGroupWorkChain

    items = structures(args.n)
    for backend in ('core.psql_dos', 'core.sqlite_dos'):
        name = f'matembed_bench_{secrets.token_hex(4)}'
        make_profile(config, backend, name)
        load_profile(name, allow_switch=True)
        try:
            start = time.perf_counter()
            (group,) = store_groups('storage', items, args.n)
            t_store = time.perf_counter() - start
            start = time.perf_counter()
            _, node = run_get_node(FeaturizeGroupWorkChain, **inputs_of(group, args.batch_size))
            t_featurize = time.perf_counter() - start
            assert node.is_finished_ok, node.exit_message
            lost, duplicated = exactly_once([group])
            print(f'{backend}: store {args.n} StructureData {t_store:.1f} s; FeaturizeGroupWorkChain (Magpie, batches '
                  f'of {args.batch_size}) {t_featurize:.1f} s = {t_featurize / args.n * 1e3:.2f} ms/structure; '
                  f'{lost} lost, {duplicated} duplicated')  # fmt: skip
        finally:
            get_manager().unload_profile()
            if backend == 'core.psql_dos':
                psql(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest='what', required=True)
    load_parser = sub.add_parser('load')
    load_parser.add_argument('--workchains', type=int, default=100)
    load_parser.add_argument('--batches', type=int, default=10)
    load_parser.add_argument('--batch-size', type=int, default=2)
    load_parser.add_argument('--timeout', type=float, default=3600)
    storage_parser = sub.add_parser('storage')
    storage_parser.add_argument('--n', type=int, default=10_000)
    storage_parser.add_argument('--batch-size', type=int, default=2000)
    args = parser.parse_args()

    os.environ['AIIDA_PATH'] = tempfile.mkdtemp(prefix='matembed-bench-')
    from aiida.manage.configuration import get_config

    config = get_config(create=True)
    machine = platform.processor() or platform.machine()
    print(f'machine: {machine}, {os.cpu_count()} cores, Python {sys.version.split()[0]}; load {os.getloadavg()[0]:.1f}')
    if args.what == 'load':
        load(args, config)
    else:
        storage(args, config)


if __name__ == '__main__':
    main()

"""metric points get a seq; per-series counts and a rollup for downsampling in the database

Revision ID: 0006
Revises: 0005

Existing points are numbered by step (ROW_NUMBER), counted per series, and each series'
rollup is built from its values with core.store.rollup (the code the writers use).
"""

from alembic import op
import sqlalchemy as sa

from core.store import rollup


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE metrics SET seq = numbered.rn FROM ("
        " SELECT id, ROW_NUMBER() OVER (PARTITION BY experiment_id, name ORDER BY step) - 1"
        " AS rn FROM metrics) AS numbered WHERE metrics.id = numbered.id"
    )
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.alter_column('seq', existing_type=sa.Integer(), nullable=False)
        batch_op.create_unique_constraint('uq_metrics_seq', ['experiment_id', 'name', 'seq'])
    series = op.create_table(
        'metric_series',
        sa.Column('experiment_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('last_step', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['experiment_id'], ['experiments.id'],
            name=op.f('fk_metric_series_experiment_id_experiments'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('experiment_id', 'name', name=op.f('pk_metric_series')),
    )
    rollups = op.create_table(
        'metric_rollups',
        sa.Column('experiment_id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('node', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('min_seq', sa.Integer(), nullable=False),
        sa.Column('min_value', sa.Float(), nullable=False),
        sa.Column('max_seq', sa.Integer(), nullable=False),
        sa.Column('max_value', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ['experiment_id'], ['experiments.id'],
            name=op.f('fk_metric_rollups_experiment_id_experiments'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('experiment_id', 'name', 'node', name=op.f('pk_metric_rollups')),
    )
    _backfill(op.get_bind(), series, rollups)


def _backfill(bind: sa.Connection, series: sa.Table, rollups: sa.Table) -> None:
    counts = bind.execute(
        sa.text(
            "SELECT experiment_id, name, count(*), max(step) FROM metrics"
            " GROUP BY experiment_id, name"
        )
    ).all()
    for experiment_id, name, count, last_step in counts:
        bind.execute(series.insert(), [
            {'experiment_id': experiment_id, 'name': name, 'count': count, 'last_step': last_step}
        ])
        values = bind.execute(
            sa.text("SELECT value FROM metrics WHERE experiment_id = :e AND name = :n ORDER BY seq"),
            {'e': experiment_id, 'n': name},
        ).scalars().all()

        def nothing_older(node: int) -> rollup.Extremes:
            raise KeyError(node)

        rows = [
            {'experiment_id': experiment_id, 'name': name, 'node': node, 'min_seq': e[0],
             'min_value': e[1], 'max_seq': e[2], 'max_value': e[3]}
            for node, e in rollup.new_blocks(0, len(values), values.__getitem__, nothing_older)
        ]
        for start in range(0, len(rows), 2000):
            bind.execute(rollups.insert(), rows[start:start + 2000])


def downgrade() -> None:
    op.drop_table('metric_rollups')
    op.drop_table('metric_series')
    with op.batch_alter_table('metrics', schema=None) as batch_op:
        batch_op.drop_constraint('uq_metrics_seq', type_='unique')
        batch_op.drop_column('seq')

"""scheduling: experiments' priority, memory estimate, workload and preemption request;
owners' knobs, the attempts ledger (fair share) and the worker registry

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

import core.store.models


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # Plain ADD COLUMNs, not batch mode: batch mode recreates the table on SQLite, and
    # dropping the old one would cascade to every metric and event row (see 0007).
    op.add_column(
        'experiments', sa.Column('priority', sa.Integer(), server_default='0', nullable=False)
    )
    op.add_column('experiments', sa.Column('memory_bytes', sa.BigInteger(), nullable=True))
    op.add_column('experiments', sa.Column('workload', sa.String(length=200), nullable=True))
    op.add_column(
        'experiments',
        sa.Column('preempt_requested_at', core.store.models.UTCDateTime(), nullable=True),
    )
    op.create_table(
        'owners',
        sa.Column('owner', sa.String(length=40), nullable=False),
        sa.Column('weight', sa.Float(), nullable=False),
        sa.Column('max_running', sa.Integer(), nullable=True),
        sa.Column('max_priority', sa.Integer(), nullable=False),
        sa.Column('updated_at', core.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('owner', name=op.f('pk_owners')),
    )
    op.create_table(
        'attempts',
        sa.Column('id', _BIG_ID, autoincrement=True, nullable=False),
        sa.Column('experiment_id', sa.String(length=40), nullable=False),
        sa.Column('owner', sa.String(length=40), nullable=False),
        sa.Column('worker', sa.String(length=200), nullable=False),
        sa.Column('token', sa.Integer(), nullable=False),
        sa.Column('share', sa.Float(), nullable=False),
        sa.Column('started_at', core.store.models.UTCDateTime(), nullable=False),
        sa.Column('ended_at', core.store.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ['experiment_id'], ['experiments.id'],
            name=op.f('fk_attempts_experiment_id_experiments'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attempts')),
    )
    op.create_index('ix_attempts_experiment_id_token', 'attempts', ['experiment_id', 'token'])
    op.create_index(op.f('ix_attempts_owner'), 'attempts', ['owner'])
    op.create_index(op.f('ix_attempts_ended_at'), 'attempts', ['ended_at'])
    op.create_table(
        'workers',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('device', sa.String(length=64), nullable=False),
        sa.Column('memory_bytes', sa.BigInteger(), nullable=False),
        sa.Column('started_at', core.store.models.UTCDateTime(), nullable=False),
        sa.Column('seen_at', core.store.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_workers')),
    )
    op.create_index(op.f('ix_workers_seen_at'), 'workers', ['seen_at'])


def downgrade() -> None:
    op.drop_table('workers')
    op.drop_table('attempts')
    op.drop_table('owners')
    for column in ('preempt_requested_at', 'workload', 'memory_bytes', 'priority'):
        op.drop_column('experiments', column)

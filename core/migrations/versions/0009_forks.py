"""forks: an experiment's parent and where it forked from it, a fork sweep's start
(docs/forks.md)

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (see 0008: batch mode would recreate the table on SQLite).
    op.add_column('experiments', sa.Column('parent_id', sa.String(length=40), nullable=True))
    op.add_column('experiments', sa.Column('fork', sa.JSON(), nullable=True))
    op.create_index(op.f('ix_experiments_parent_id'), 'experiments', ['parent_id'])
    op.add_column('sweeps', sa.Column('fork', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('sweeps', 'fork')
    op.drop_index(op.f('ix_experiments_parent_id'), table_name='experiments')
    op.drop_column('experiments', 'fork')
    op.drop_column('experiments', 'parent_id')

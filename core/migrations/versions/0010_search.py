"""adaptive sweeps: a member's rung and the step it pauses at, a sweep's search

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs (see 0008: batch mode would recreate the table on SQLite).
    op.add_column('experiments', sa.Column('rung', sa.Integer(), nullable=True))
    op.add_column('experiments', sa.Column('rung_step', sa.Integer(), nullable=True))
    op.add_column('sweeps', sa.Column('search', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('sweeps', 'search')
    op.drop_column('experiments', 'rung_step')
    op.drop_column('experiments', 'rung')

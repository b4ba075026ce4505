"""experiments.checkpoint_step: written on every checkpoint, never read (the checkpoint
file itself holds its step), so dropped

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER TABLE (SQLite >= 3.35 has DROP COLUMN), not batch mode: batch mode
    # recreates the table on SQLite, and dropping the old one would cascade to every
    # metric and event row that references it.
    op.drop_column('experiments', 'checkpoint_step')


def downgrade() -> None:
    op.add_column('experiments', sa.Column('checkpoint_step', sa.Integer(), nullable=True))

"""packed sweeps: experiments.pack_id, sweeps.packing

Revision ID: 0005
Revises: 0004
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pack_id', sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f('ix_experiments_pack_id'), ['pack_id'], unique=False)
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('packing', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sweeps', schema=None) as batch_op:
        batch_op.drop_column('packing')
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_experiments_pack_id'))
        batch_op.drop_column('pack_id')

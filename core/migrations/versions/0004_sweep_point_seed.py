"""sweep experiments store their grid point, arm label and seed

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sweep_point', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('sweep_arm', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('sweep_seed', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('experiments', schema=None) as batch_op:
        batch_op.drop_column('sweep_seed')
        batch_op.drop_column('sweep_arm')
        batch_op.drop_column('sweep_point')

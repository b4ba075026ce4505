"""sweep labels: the names a researcher gives a sweep's arms for reports and figures

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('sweeps', sa.Column('labels', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('sweeps', 'labels')

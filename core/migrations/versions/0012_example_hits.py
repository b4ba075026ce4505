"""per-example results: which test examples a finished run got right (core/examples.py)

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('experiments', sa.Column('examples', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('experiments', 'examples')

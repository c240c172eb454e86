"""counters: counts every process adds to, for /metrics (refused webhooks, adapter errors)

Revision ID: 0006_counters
Revises: 0005_incidents
"""
from alembic import op
import sqlalchemy as sa


revision = '0006_counters'
down_revision = '0005_incidents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'counters',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('labels', sa.String(length=255), nullable=False),
        sa.Column('value', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('name', 'labels'),
    )


def downgrade() -> None:
    op.drop_table('counters')

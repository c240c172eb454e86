"""effect retries: when an effect whose attempt failed is due to be tried again

Revision ID: 0010_effect_retries
Revises: 0009_incident_runs
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_effect_retries'
down_revision = '0009_incident_runs'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('effects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('effects', schema=None) as batch_op:
        batch_op.drop_column('retry_at')

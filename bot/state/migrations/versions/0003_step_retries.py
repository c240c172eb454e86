"""step retries: how often a run's current step failed transiently, and when to try it again

Revision ID: 0003_step_retries
Revises: 0002_fleet
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_step_retries'
down_revision = '0002_fleet'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('retry_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('retry_at')
        batch_op.drop_column('attempts')

"""playbook versions: every version runs started on is kept, and each run names its own

Revision ID: 0007_playbook_versions
Revises: 0006_counters
"""
from alembic import op
import sqlalchemy as sa


revision = '0007_playbook_versions'
down_revision = '0006_counters'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'playbook_versions',
        sa.Column('version', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('source', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('version'),
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('playbook_version', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_runs_playbook_version'), ['playbook_version'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_playbook_version'))
        batch_op.drop_column('playbook_version')
    op.drop_table('playbook_versions')

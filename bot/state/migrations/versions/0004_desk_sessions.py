"""desk sessions: logins held on the server, so that logging out ends them everywhere

Revision ID: 0004_desk_sessions
Revises: 0003_step_retries
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_desk_sessions'
down_revision = '0003_step_retries'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'desk_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('desk_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_desk_sessions_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('desk_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_desk_sessions_expires_at'))
    op.drop_table('desk_sessions')

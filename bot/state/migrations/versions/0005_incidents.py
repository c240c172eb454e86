"""incidents: one PBX failing, the tickets of its users joined to it; the periodic health check

Revision ID: 0005_incidents
Revises: 0004_desk_sessions
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_incidents'
down_revision = '0004_desk_sessions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'incidents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('pbx', sa.String(length=64), nullable=False),
        sa.Column('cause', sa.String(length=64), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('statement', sa.Text(), nullable=False),
        sa.Column('active_key', sa.String(length=140), nullable=True),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('opened_by', sa.Text(), nullable=False),
        sa.Column('facts', sa.JSON(), nullable=False),
        sa.Column('health', sa.Text(), nullable=False),
        sa.Column('checks', sa.Integer(), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('restored_by', sa.String(length=255), nullable=True),
        sa.Column('dismissed_by', sa.String(length=255), nullable=True),
        sa.Column('owner', sa.String(length=255), nullable=True),
        sa.Column('parent_key', sa.String(length=64), nullable=True),
        sa.Column('parent_resolved', sa.Boolean(), nullable=False),
        sa.Column('parent_error', sa.Text(), nullable=False),
        sa.Column('message', sa.JSON(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('shown_version', sa.Integer(), nullable=False),
        sa.Column('remind_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('recovered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('close_reason', sa.Text(), nullable=False),
        sa.Column('lease_owner', sa.String(length=64), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('active_key'),
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_pbx'), ['pbx'], unique=False)
        batch_op.create_index(batch_op.f('ix_incidents_state'), ['state'], unique=False)
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('incident_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('error_class', sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f('ix_runs_incident_id'), ['incident_id'], unique=False)
        batch_op.create_foreign_key('fk_runs_incident_id', 'incidents', ['incident_id'], ['id'])
    with op.batch_alter_table('pbx_health', schema=None) as batch_op:
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pbx_health', schema=None) as batch_op:
        batch_op.drop_column('due_at')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_constraint('fk_runs_incident_id', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_runs_incident_id'))
        batch_op.drop_column('error_class')
        batch_op.drop_column('incident_id')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_state'))
        batch_op.drop_index(batch_op.f('ix_incidents_pbx'))
    op.drop_table('incidents')

"""incident_runs: every run that joined an incident, kept when it joins a later one

Revision ID: 0009_incident_runs
Revises: 0008_operator_actions
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_incident_runs'
down_revision = '0008_operator_actions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'incident_runs',
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['incident_id'], ['incidents.id']),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id']),
        sa.PrimaryKeyConstraint('incident_id', 'run_id'),
    )
    op.create_index(op.f('ix_incident_runs_run_id'), 'incident_runs', ['run_id'], unique=False)
    # what is known so far: the incident each run joined last
    op.execute(
        'INSERT INTO incident_runs (incident_id, run_id) SELECT incident_id, id FROM runs '
        'WHERE incident_id IS NOT NULL'
    )


def downgrade() -> None:
    op.drop_index(op.f('ix_incident_runs_run_id'), table_name='incident_runs')
    op.drop_table('incident_runs')

"""operator actions: who cancelled, retried, re-ran or handed what, when and why; a prompt's new hand

Revision ID: 0008_operator_actions
Revises: 0007_playbook_versions
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_operator_actions'
down_revision = '0007_playbook_versions'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'operator_actions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('verb', sa.String(length=16), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.Column('effect_id', sa.Integer(), nullable=True),
        sa.Column('prompt_id', sa.String(length=32), nullable=True),
        sa.Column('who', sa.String(length=255), nullable=False),
        sa.Column('via', sa.String(length=16), nullable=False),
        sa.Column('why', sa.Text(), nullable=False),
        sa.Column('done', sa.Text(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['runs.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index(op.f('ix_operator_actions_run_id'), 'operator_actions', ['run_id'], unique=False)
    with op.batch_alter_table('prompts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handed_to', sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('prompts', schema=None) as batch_op:
        batch_op.drop_column('handed_to')
    op.drop_index(op.f('ix_operator_actions_run_id'), table_name='operator_actions')
    op.drop_table('operator_actions')

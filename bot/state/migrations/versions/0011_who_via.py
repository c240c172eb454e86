"""who acted where: the surface a step's answer came from, and an incident's owner's and restorer's

A person's name is shown as a Slack mention only when they acted in Slack; a desk name that looks
like a Slack user id stays a name. Step results answered before this migration take the surface
their prompt kept; an incident's owner and restorer of before stay unknown (shown as text).

Revision ID: 0011_who_via
Revises: 0010_effect_retries
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_who_via'
down_revision = '0010_effect_retries'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('step_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_via', sa.String(length=16), nullable=True))
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_via', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('restored_via', sa.String(length=16), nullable=True))
    # A person's step result is recorded with its prompt's answerer and answer time.
    op.execute(
        "UPDATE step_results SET answered_via = ("
        "SELECT MAX(prompts.answered_via) FROM prompts WHERE prompts.run_id = step_results.run_id "
        "AND prompts.answered_by = step_results.answered_by "
        "AND prompts.answered_at = step_results.finished_at"
        ") WHERE answered_by IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('restored_via')
        batch_op.drop_column('owner_via')
    with op.batch_alter_table('step_results', schema=None) as batch_op:
        batch_op.drop_column('answered_via')

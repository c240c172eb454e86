"""step words: a step result's outcome in the words people read, beside its code

Revision ID: 0012_step_words
Revises: 0011_who_via
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_step_words'
down_revision = '0011_who_via'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('step_results', schema=None) as batch_op:
        batch_op.add_column(sa.Column('said', sa.String(length=200), nullable=False, server_default=''))
    # Results recorded before words were kept show their code: the words they had are not known here.
    op.execute("UPDATE step_results SET said = outcome")


def downgrade() -> None:
    with op.batch_alter_table('step_results', schema=None) as batch_op:
        batch_op.drop_column('said')

"""fleet: the PBX a run is checked against, remembered routes, PBX health

Revision ID: 0002_fleet
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_fleet'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pbx', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pbx_reason', sa.Text(), nullable=False, server_default=''))
    op.create_table('pbx_routes',
    sa.Column('customer_key', sa.String(length=255), nullable=False),
    sa.Column('pbx', sa.String(length=64), nullable=False),
    sa.Column('remembered_by', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('customer_key')
    )
    op.create_table('pbx_health',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('pbx_health')
    op.drop_table('pbx_routes')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_column('pbx_reason')
        batch_op.drop_column('pbx')

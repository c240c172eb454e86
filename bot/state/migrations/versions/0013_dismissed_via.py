"""dismissed via: where a person said an incident is not a PBX problem

An incident's dismisser is named as its owner and restorer are (0011_who_via): a Slack user id as
one, any other name as text. A dismissal made in Slack before this migration is known by the click
connbot stored (an `incident` event of Slack by the same user); any other stays unknown (its name is
shown as text, as a desk's, the API's or the CLI's would be).

Revision ID: 0013_dismissed_via
Revises: 0012_step_words
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_dismissed_via'
down_revision = '0012_step_words'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dismissed_via', sa.String(length=16), nullable=True))
    # The clicks' payloads are JSON: read here alike on SQLite and PostgreSQL, not in each one's SQL.
    conn = op.get_bind()
    events = sa.table(
        'events', sa.column('source', sa.String), sa.column('kind', sa.String), sa.column('payload', sa.JSON)
    )
    clicks = conn.execute(
        sa.select(events.c.payload).where(events.c.source == 'slack', events.c.kind == 'incident')
    ).scalars()
    in_slack = {
        (str(click.get('incident')), click.get('user'))
        for click in clicks
        if isinstance(click, dict) and click.get('action') == 'dismiss'
    }
    incidents = sa.table(
        'incidents',
        sa.column('id', sa.Integer),
        sa.column('dismissed_by', sa.String),
        sa.column('dismissed_via', sa.String),
    )
    dismissed = sa.select(incidents.c.id, incidents.c.dismissed_by).where(
        incidents.c.dismissed_by.is_not(None)
    )
    for incident_id, by in conn.execute(dismissed).all():
        if (str(incident_id), by) in in_slack:
            conn.execute(
                sa.update(incidents).where(incidents.c.id == incident_id).values(dismissed_via='slack')
            )


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('dismissed_via')

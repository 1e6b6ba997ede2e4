"""webhooks: endpoints, per-cluster cursors, attempts; cursors for new clusters by trigger

Revision ID: 0008_webhooks
Revises: 0007_output_limits
Create Date: 2026-12-03 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0008_webhooks'
down_revision: str | None = '0007_output_limits'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A cluster created after a team's endpoints gets a cursor per endpoint in the same
# transaction, whoever inserts it: its first event can never slip past (docs/webhooks.md).
# Cluster creation locks the team row, and so does endpoint creation, so one of the two
# always sees the other.
CREATE_FUNCTION = """
CREATE FUNCTION hangar_webhook_cursors_for_cluster() RETURNS trigger AS $$
BEGIN
    INSERT INTO webhook_cursors (endpoint_id, cluster_id, delivered_seq, attempts)
    SELECT e.id, NEW.id, 0, 0 FROM webhook_endpoints e WHERE e.team_id = NEW.team_id
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""
CREATE_TRIGGER = """
CREATE TRIGGER clusters_webhook_cursors AFTER INSERT ON clusters
    FOR EACH ROW EXECUTE FUNCTION hangar_webhook_cursors_for_cluster()
"""


def upgrade() -> None:
    op.create_table('webhook_endpoints',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('team_id', sa.UUID(), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('events', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('secret_enc', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('failing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disabled_reason', sa.Text(), nullable=True),
    sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lease_owner', sa.UUID(), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('wake_gen', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_webhook_endpoints_team_id_teams'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_endpoints'))
    )
    op.create_index('ix_webhook_endpoints_team_created', 'webhook_endpoints', ['team_id', 'created_at'], unique=False)
    op.create_table('webhook_attempts',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('endpoint_id', sa.UUID(), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_attempts_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_attempts'))
    )
    op.create_index('ix_webhook_attempts_at', 'webhook_attempts', ['at'], unique=False)
    op.create_index('ix_webhook_attempts_endpoint_id', 'webhook_attempts', ['endpoint_id', 'id'], unique=False)
    op.create_table('webhook_cursors',
    sa.Column('endpoint_id', sa.UUID(), nullable=False),
    sa.Column('cluster_id', sa.UUID(), nullable=False),
    sa.Column('delivered_seq', sa.BigInteger(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['cluster_id'], ['clusters.id'], name=op.f('fk_webhook_cursors_cluster_id_clusters'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], name=op.f('fk_webhook_cursors_endpoint_id_webhook_endpoints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('endpoint_id', 'cluster_id', name=op.f('pk_webhook_cursors'))
    )
    op.create_index('ix_webhook_cursors_cluster_id', 'webhook_cursors', ['cluster_id'], unique=False)
    op.execute(CREATE_FUNCTION)
    op.execute(CREATE_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS clusters_webhook_cursors ON clusters")
    op.execute("DROP FUNCTION IF EXISTS hangar_webhook_cursors_for_cluster()")
    op.drop_index('ix_webhook_cursors_cluster_id', table_name='webhook_cursors')
    op.drop_table('webhook_cursors')
    op.drop_index('ix_webhook_attempts_endpoint_id', table_name='webhook_attempts')
    op.drop_index('ix_webhook_attempts_at', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index('ix_webhook_endpoints_team_created', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')

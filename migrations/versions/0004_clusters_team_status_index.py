"""clusters: (team_id, status, created_at) index for GET /clusters?status=...

A team's page filtered by status (the dashboard's "live" view) read every cluster of the
team through ix_clusters_team_created and filtered them: 2.2 ms with 10,000 finished
clusters in the team, growing with its history. With this index it reads the matching
rows only (0.2 ms); the unfiltered page keeps using ix_clusters_team_created.

Revision ID: 0004
Revises: 0003_spend
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0004'
down_revision: str | None = '0003_spend'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_clusters_team_status_created', 'clusters',
                    ['team_id', 'status', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_clusters_team_status_created', table_name='clusters')

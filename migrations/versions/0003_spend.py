"""spend: monthly budgets and their alerts per team, event retention per cluster

Revision ID: 0003_spend
Revises: 0002
Create Date: 2026-12-03 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_spend'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('teams', sa.Column('monthly_budget', sa.Double(), nullable=True))
    op.add_column('teams', sa.Column('budget_alert_month', sa.String(length=7), nullable=True))
    op.add_column('teams', sa.Column('budget_alert_level', sa.Integer(), server_default='0',
                                     nullable=False))
    op.add_column('clusters', sa.Column('events_purged_at', sa.DateTime(timezone=True),
                                        nullable=True))
    # The retention sweep's look-up: ended clusters whose events are still there.
    op.create_index('ix_clusters_retention', 'clusters', ['terminated_at'], unique=False,
                    postgresql_where=sa.text('events_purged_at IS NULL'))
    # Nodes billing in a window (GET /usage, the month to date), and those billing now.
    op.create_index('ix_nodes_billed_until', 'nodes', [sa.text(
        "COALESCE(terminated_at, 'infinity'::timestamp with time zone)")], unique=False)
    op.create_index('ix_nodes_live', 'nodes', ['cluster_id'], unique=False,
                    postgresql_where=sa.text('terminated_at IS NULL'))


def downgrade() -> None:
    op.drop_index('ix_nodes_live', table_name='nodes')
    op.drop_index('ix_nodes_billed_until', table_name='nodes')
    op.drop_index('ix_clusters_retention', table_name='clusters')
    op.drop_column('clusters', 'events_purged_at')
    op.drop_column('teams', 'budget_alert_level')
    op.drop_column('teams', 'budget_alert_month')
    op.drop_column('teams', 'monthly_budget')

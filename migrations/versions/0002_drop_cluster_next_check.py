"""drop clusters.next_check_at (never read or written: nodes carry the deadlines)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_clusters_next_check_at', table_name='clusters')
    op.drop_column('clusters', 'next_check_at')


def downgrade() -> None:
    op.add_column('clusters', sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_clusters_next_check_at', 'clusters', ['next_check_at'], unique=False)

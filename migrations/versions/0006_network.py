"""private networks: clusters.network, network_volume_id and the Instant Cluster's intent
(provider_cluster_name, _id, _attempt, _candidate); nodes.private_ip came with 0005_access

Revision ID: 0006_network
Revises: 0005_access
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006_network'
down_revision: str | None = '0005_access'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('clusters', sa.Column('network', sa.String(length=16), server_default='public',
                                        nullable=False))
    op.add_column('clusters', sa.Column('network_volume_id', sa.String(length=64), nullable=True))
    op.add_column('clusters', sa.Column('provider_cluster_name', sa.String(length=128),
                                        nullable=True))
    op.add_column('clusters', sa.Column('provider_cluster_id', sa.String(length=128),
                                        nullable=True))
    op.add_column('clusters', sa.Column('provider_cluster_attempt', sa.Integer(),
                                        server_default='0', nullable=False))
    op.add_column('clusters', sa.Column('provider_cluster_candidate', sa.Integer(),
                                        server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('clusters', 'provider_cluster_candidate')
    op.drop_column('clusters', 'provider_cluster_attempt')
    op.drop_column('clusters', 'provider_cluster_id')
    op.drop_column('clusters', 'provider_cluster_name')
    op.drop_column('clusters', 'network_volume_id')
    op.drop_column('clusters', 'network')

"""people on their nodes, secrets: clusters.ssh_public_keys, secret_names, secrets_enc;
nodes.private_ip

Revision ID: 0005_access
Revises: 0004
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005_access'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('clusters', sa.Column('ssh_public_keys', postgresql.JSONB(), nullable=False,
                                        server_default=sa.text("'[]'::jsonb")))
    op.add_column('clusters', sa.Column('secret_names', postgresql.JSONB(), nullable=False,
                                        server_default=sa.text("'[]'::jsonb")))
    op.add_column('clusters', sa.Column('secrets_enc', sa.LargeBinary(), nullable=True))
    op.add_column('nodes', sa.Column('private_ip', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('nodes', 'private_ip')
    op.drop_column('clusters', 'secrets_enc')
    op.drop_column('clusters', 'secret_names')
    op.drop_column('clusters', 'ssh_public_keys')

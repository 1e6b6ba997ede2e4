"""bootstrap output beyond the limits: nodes.output_skipped_bytes, output_notice_at,
output_noticed_lines, output_noticed_bytes (drop notices at most once per node per 10 s)

Revision ID: 0007_output_limits
Revises: 0006_network
Create Date: 2026-12-04 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_output_limits'
down_revision: str | None = '0006_network'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('nodes', sa.Column('output_skipped_bytes', sa.BigInteger(), nullable=False,
                                     server_default=sa.text('0')))
    op.add_column('nodes', sa.Column('output_notice_at', sa.DateTime(timezone=True),
                                     nullable=True))
    op.add_column('nodes', sa.Column('output_noticed_lines', sa.Integer(), nullable=False,
                                     server_default=sa.text('0')))
    op.add_column('nodes', sa.Column('output_noticed_bytes', sa.BigInteger(), nullable=False,
                                     server_default=sa.text('0')))


def downgrade() -> None:
    op.drop_column('nodes', 'output_noticed_bytes')
    op.drop_column('nodes', 'output_noticed_lines')
    op.drop_column('nodes', 'output_notice_at')
    op.drop_column('nodes', 'output_skipped_bytes')

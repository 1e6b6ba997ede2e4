"""Re-encrypting what Hangar stores (SSH private keys, cluster secrets) with the current
HANGAR_SECRET_KEY, so that old keys can be dropped (`hangar keys rotate-secrets`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.models import Cluster
from app.domain.crypto import Keyring, KeyUnavailable


@dataclass
class Rotated:
    rotated: int = 0
    failed: list[uuid.UUID] = field(default_factory=list)


async def rotate_secrets(
    sessionmaker: async_sessionmaker[AsyncSession], keys: Keyring, *, batch: int = 200
) -> Rotated:
    """Every cluster's encrypted columns, decrypted with any key of `keys` and written with
    its current key, `batch` clusters per transaction. The rows are locked while they are
    rewritten, so a concurrent change (a terminated cluster's secrets being deleted) is
    never undone. Clusters no key decrypts are left as they are and reported."""
    result = Rotated()
    after: uuid.UUID | None = None
    while True:
        async with sessionmaker() as session, session.begin():
            query = (select(Cluster.id, Cluster.ssh_private_key_enc, Cluster.secrets_enc)
                     .order_by(Cluster.id).limit(batch).with_for_update())
            if after is not None:
                query = query.where(Cluster.id > after)
            rows = (await session.execute(query)).all()
            if not rows:
                return result
            for cluster_id, key_enc, secrets_enc in rows:
                try:
                    values = {"ssh_private_key_enc": keys.rotate(key_enc)}
                    if secrets_enc is not None:
                        values["secrets_enc"] = keys.rotate(secrets_enc)
                except KeyUnavailable:
                    result.failed.append(cluster_id)
                    continue
                await session.execute(
                    update(Cluster).where(Cluster.id == cluster_id).values(**values))
                result.rotated += 1
            after = rows[-1][0]

"""Seed a team's history straight into the database: `n` finished clusters (two nodes each,
terminated, billed for an hour) and `live` running ones, created a minute apart, newest
last. What a team that has used Hangar for a while looks like to `GET /clusters`, without
provisioning thousands of clusters first."""

from __future__ import annotations

import uuid

import asyncpg

_CLUSTERS = """
INSERT INTO clusters (id, team_id, name, status, reason, message, gpu_type, gpu_type_id,
    gpu_count, node_count, cloud_type, allocation, image, container_disk_gb, volume_gb,
    volume_mount_path, ports, env, data_center_ids, setup, quoted_hourly_rate, placements,
    ssh_public_key, ssh_private_key_enc, last_event_seq, created_at, updated_at, ready_at,
    terminated_at)
SELECT gen_random_uuid(), $1, $2::text || g, CASE WHEN g > $3::int THEN 'ready' ELSE 'terminated' END,
    CASE WHEN g > $3::int THEN NULL ELSE 'deleted' END,
    CASE WHEN g > $3::int THEN NULL ELSE 'deleted by request' END,
    '4090', 'NVIDIA GeForce RTX 4090', 1, 2, 'secure', 'on-demand', 'runpod/pytorch',
    50, 20, '/workspace', '["22/tcp"]', '{}', '[]', 'echo ok', 0.88, '[[]]',
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIbench bench', '\\x00', 9,
    now() - make_interval(mins => ($3::int + $4::int - g) + 90), now(),
    now() - make_interval(mins => ($3::int + $4::int - g) + 89),
    CASE WHEN g > $3::int THEN NULL ELSE now() - make_interval(mins => ($3::int + $4::int - g) + 29) END
FROM generate_series(1, $3::int + $4::int) g
"""

_NODES = """
INSERT INTO nodes (id, cluster_id, index, status, reason, attempt, candidate, pod_name,
    pod_id, gpu_type_id, gpu_count, data_center_id, public_ip, ssh_port, hourly_rate,
    output_offset, output_lines, output_dropped, terminate_attempts, created_at,
    started_at, ready_at, terminated_at)
SELECT gen_random_uuid(), c.id, i, CASE WHEN c.terminated_at IS NULL THEN 'ready'
    ELSE 'terminated' END, CASE WHEN c.terminated_at IS NULL THEN NULL ELSE 'deleted' END,
    0, 0, 'hangar-history-' || c.id || '-n' || i, 'pod' || substr(c.id::text, 1, 8) || i,
    'NVIDIA GeForce RTX 4090', 1, 'US-KS-2', '203.0.113.7', 22000 + i, 0.44, 0, 0, 0, 0,
    c.created_at, c.ready_at, c.ready_at, c.terminated_at
FROM clusters c CROSS JOIN generate_series(0, 1) i
WHERE c.team_id = $1 AND c.name LIKE $2::text || '%'
"""


async def seed_history(dsn: str, team: str, n: int, live: int = 0,
                       prefix: str = "history-") -> list[uuid.UUID]:
    """`n` finished and `live` ready clusters for the team named `team` (which must exist);
    returns the finished ones' ids, newest first."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            team_id = await conn.fetchval("SELECT id FROM teams WHERE name = $1", team)
            await conn.execute(_CLUSTERS, team_id, prefix, n, live)
            await conn.execute(_NODES, team_id, prefix)
        await conn.execute("ANALYZE clusters; ANALYZE nodes")
        return [r["id"] for r in await conn.fetch(
            "SELECT id FROM clusters WHERE team_id = $1 AND status = 'terminated' "
            "ORDER BY created_at DESC", team_id)]
    finally:
        await conn.close()

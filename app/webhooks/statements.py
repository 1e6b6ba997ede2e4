"""The SQL a delivery run sends (asyncpg: one prepared statement each): the endpoint's
lease (take, renew, release, give up), its cursors with their pending events, an attempt
recorded together with the cursor's guarded move, skips past filtered or purged events,
and the endpoint's health (succeeded, failing, disabled)."""

TAKE_LEASE = """
UPDATE webhook_endpoints SET
    wake_gen = wake_gen + 1,
    lease_owner = CASE WHEN lease_until IS NULL OR lease_until < now() THEN $2
                       ELSE lease_owner END,
    lease_until = CASE WHEN lease_until IS NULL OR lease_until < now()
                       THEN now() + make_interval(secs => $3) ELSE lease_until END
WHERE id = $1 AND disabled_at IS NULL
RETURNING lease_owner, wake_gen, url, events, secret_enc, failing_since
"""
RENEW = """
UPDATE webhook_endpoints SET lease_until = now() + make_interval(secs => $3)
WHERE id = $1 AND lease_owner = $2 AND disabled_at IS NULL
RETURNING wake_gen
"""
RELEASE = """
UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL, next_run_at = $4
WHERE id = $1 AND lease_owner = $2 AND wake_gen = $3
RETURNING 1
"""
GIVE_UP = """
UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL, next_run_at = now()
WHERE id = $1 AND lease_owner = $2
"""
LEASE_STATE = "SELECT lease_owner, wake_gen FROM webhook_endpoints WHERE id = $1"
# Every cursor of the endpoint with events after it, and for those that are due and have no
# lane running here ($2), their next events: one statement per look.
PENDING = """
SELECT w.cluster_id, w.delivered_seq, w.attempts, w.next_attempt_at, c.last_event_seq,
       (w.next_attempt_at IS NULL OR w.next_attempt_at <= now()) AS due,
       e.seq, e.type, e.data::text AS data, e.created_at
FROM webhook_cursors w
JOIN clusters c ON c.id = w.cluster_id
LEFT JOIN LATERAL (
    SELECT ev.seq, ev.type, ev.data, ev.created_at FROM cluster_events ev
    WHERE ev.cluster_id = w.cluster_id AND ev.seq > w.delivered_seq
      AND (w.next_attempt_at IS NULL OR w.next_attempt_at <= now())
      AND NOT (w.cluster_id = ANY($2::uuid[]))
    ORDER BY ev.seq LIMIT $3
) e ON true
WHERE w.endpoint_id = $1 AND c.last_event_seq > w.delivered_seq
ORDER BY w.cluster_id, e.seq
"""
# Move the cursor (guarded by where it was) and record the attempt, in one statement.
RECORD = """
WITH moved AS (
    UPDATE webhook_cursors SET delivered_seq = $3, attempts = $5, next_attempt_at = $6
    WHERE endpoint_id = $1 AND cluster_id = $2 AND delivered_seq = $4
    RETURNING 1
)
INSERT INTO webhook_attempts
    (endpoint_id, event_id, type, attempt, status_code, error, at, next_attempt_at)
SELECT $1, $7, $8, $9, $10, $11, now(), $6 FROM moved
RETURNING id
"""
SKIP = """
UPDATE webhook_cursors SET delivered_seq = $3
WHERE endpoint_id = $1 AND cluster_id = $2 AND delivered_seq = $4
RETURNING 1
"""
SKIP_PURGED = """
UPDATE webhook_cursors SET delivered_seq = $3, attempts = 0, next_attempt_at = NULL
WHERE endpoint_id = $1 AND cluster_id = $2 AND delivered_seq = $4
"""
SUCCEEDED = """
UPDATE webhook_endpoints SET failing_since = NULL, last_success_at = now() WHERE id = $1
"""
FAILED = """
UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()) WHERE id = $1
RETURNING failing_since
"""
DISABLE = """
UPDATE webhook_endpoints SET disabled_at = now(), disabled_reason = $2,
    lease_owner = NULL, lease_until = NULL
WHERE id = $1 AND disabled_at IS NULL
RETURNING 1
"""

-- Views for people reading job history with plain SQL. Their names and columns are a stable
-- interface (docs/sql.md): columns are only ever added, never renamed or removed.

CREATE VIEW job_history AS
SELECT
    j.id AS job_id,
    j.pool_id AS pool_id,
    j.state AS state,
    j.creation_time AS creation_time,
    j.creation_time AS start_time,
    j.end_time AS end_time,
    CASE WHEN j.state = 'completed' THEN j.terminate_reason END AS terminate_reason,
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'active'), 0) AS active,
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'running'), 0) AS running,
    coalesce((SELECT sum(tasks) FROM task_count c WHERE c.job_pk = j.pk AND c.bucket IN ('succeeded', 'failed')), 0)
        AS completed,
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'succeeded'), 0) AS succeeded,
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'failed'), 0) AS failed
FROM job j;

CREATE VIEW task_history AS
SELECT
    j.id AS job_id,
    t.id AS task_id,
    e.attempt AS attempt,
    n.id AS node_id,
    e.state AS state,
    e.exit_code AS exit_code,
    e.result AS result,
    json_extract(e.failure_info, '$.code') AS failure_code,
    e.start_time AS start_time,
    e.end_time AS end_time,
    e.retry_count AS retry_count,
    e.requeue_count AS requeue_count,
    e.retention_deadline AS retention_deadline
FROM execution e
JOIN task t ON t.pk = e.task_pk
JOIN job j ON j.pk = e.job_pk
JOIN node n ON n.pk = e.node_pk
WHERE e.kind = 'task';

CREATE VIEW prep_release_status AS
SELECT
    j.id AS job_id,
    p.id AS pool_id,
    n.id AS node_id,
    r.prep_state AS prep_state,
    r.prep_result AS prep_result,
    r.prep_exit_code AS prep_exit_code,
    r.prep_start_time AS prep_start_time,
    r.prep_end_time AS prep_end_time,
    r.prep_retry_count AS prep_retry_count,
    r.release_state AS release_state,
    r.release_result AS release_result,
    r.release_exit_code AS release_exit_code,
    r.release_start_time AS release_start_time,
    r.release_end_time AS release_end_time
FROM job_node r
JOIN job j ON j.pk = r.job_pk
JOIN node n ON n.pk = r.node_pk
JOIN pool p ON p.pk = n.pool_pk;

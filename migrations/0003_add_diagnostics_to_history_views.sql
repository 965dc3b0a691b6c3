-- Say why in the history views: a job's scheduling error (e.g. JobPreparationTaskFailed) and, per
-- (job, node), whether the node may still run the job's tasks and why preparation or release failed.
-- Columns are only added at the end, so queries written against version 2 keep working.

DROP VIEW job_history;
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
    coalesce((SELECT tasks FROM task_count c WHERE c.job_pk = j.pk AND c.bucket = 'failed'), 0) AS failed,
    json_extract(j.scheduling_error, '$.code') AS scheduling_error_code,
    json_extract(j.scheduling_error, '$.message') AS scheduling_error_message
FROM job j;

DROP VIEW prep_release_status;
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
    r.release_end_time AS release_end_time,
    r.eligible AS eligible,
    json_extract(r.prep_failure_info, '$.code') AS prep_failure_code,
    json_extract(r.release_failure_info, '$.code') AS release_failure_code
FROM job_node r
JOIN job j ON j.pk = r.job_pk
JOIN node n ON n.pk = r.node_pk
JOIN pool p ON p.pk = n.pool_pk;

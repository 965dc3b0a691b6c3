-- Reads every scheduler pass makes, held to the rows they are about rather than to every live one,
-- so that what a pass costs does not grow with the work running beside it (make bench: the
-- throughput of short tasks beside 200 running `sleep` tasks).
--
-- Executions Bookend decided to end (to signal, or to complete unspawned): a few at a time, while
-- execution_live holds every unfinished one, each read from the table to test kill_reason.
CREATE INDEX execution_killing ON execution (pk) WHERE state <> 'completed' AND kill_reason IS NOT NULL;
-- Wall clocks that ran out: the pass asks only for deadlines already past.
CREATE INDEX execution_deadline ON execution (deadline) WHERE state <> 'completed' AND deadline IS NOT NULL;
-- A node's used slots, summed from the index alone (its state and required_slots in the entry), not
-- from one table read per task on the node.
DROP INDEX task_on_node;
CREATE INDEX task_on_node ON task (node_pk, state, required_slots) WHERE state IN ('preparing', 'running');

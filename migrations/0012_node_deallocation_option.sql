-- What a node that leaves its pool does to the work running on it: the nodeDeallocationOption of
-- the resize that removes it (requeue, terminate, taskcompletion, retaineddata). Until now a leaving
-- node always requeued its running tasks, whatever the resize asked for. NULL (a node leaving with
-- its pool's deletion, or before this migration) means requeue. Its own column: reboot_option is
-- tied to the rebooting state by a CHECK that a migration could change only by rebuilding the table.
ALTER TABLE node ADD COLUMN deallocation_option TEXT
    CHECK (deallocation_option = 'requeue' OR deallocation_option = 'terminate' OR deallocation_option = 'taskcompletion' OR deallocation_option = 'retaineddata');

-- Node providers (issue 13): a node is either a folder on this machine (`local`, every node before
-- this migration) or one Slurm allocation (`slurm`) whose job steps run the node's executions.
--
-- `provider` is fixed when the node is created, from the pool's `bookend.nodeProvider` metadata or
-- the engine's default: a node never changes provider. `slurm_partition` is the partition its
-- allocation was asked in (NULL: the cluster's default). `slurm_job_id` is the allocation's job id,
-- stored as soon as `sbatch` answered; NULL while it is being submitted (the job name
-- `bookend-<pool>-<node>` finds it again after a crash in between). `slurm_host` is the Slurm node the
-- allocation landed on, set when it starts running; the node boots only then.
-- `slurm_released_time` is set once `scancel` of a removed node's allocation succeeded, or the
-- allocation was seen gone, so it is cancelled once.
ALTER TABLE node ADD COLUMN provider TEXT NOT NULL DEFAULT 'local' CHECK (provider IN ('local', 'slurm'));
ALTER TABLE node ADD COLUMN slurm_partition TEXT;
ALTER TABLE node ADD COLUMN slurm_job_id TEXT;
ALTER TABLE node ADD COLUMN slurm_host TEXT;
ALTER TABLE node ADD COLUMN slurm_released_time TEXT;

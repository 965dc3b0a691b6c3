"""Tasks per second through Bookend's Slurm steps against `srun` of the same command from shell loops.

Both run in this one invocation on the same throw-away cluster (one slurmd, 2 CPUs): Bookend with a
pool of two Slurm nodes (one slot each, so two steps at a time), the baseline as two shell loops,
each running `srun --overlap` steps one after another in an allocation of its own. The figure is the
ratio of the two; absolute rates depend on the machine and what else runs on it.
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import CLUSTER, Cluster, Daemon  # noqa: E402

from azure.batch import models  # noqa: E402

TASKS = int(os.environ.get("BENCH_SLURM_TASKS", "60"))


def wait_until(condition, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def bookend_rate(cluster):
    daemon = Daemon(cluster, ["--node-provider", "slurm"]).start()
    try:
        client = daemon.client()
        client.create_pool(models.BatchPoolCreateOptions(id="bench", vm_size="standard_d1_v2", target_dedicated_nodes=2,
                                                         task_slots_per_node=1))
        wait_until(lambda: [n.state for n in client.list_nodes("bench")] == [models.BatchNodeState.IDLE] * 2)
        client.create_job(models.BatchJobCreateOptions(id="bench", pool_info=models.BatchPoolInfo(pool_id="bench")))
        tasks = [models.BatchTaskCreateOptions(id="t%04d" % i, command_line="/bin/true") for i in range(TASKS)]
        started = time.time()
        for chunk in range(0, TASKS, 100):
            client.create_task_collection("bench", models.BatchTaskGroup(task_values=tasks[chunk:chunk + 100]))
        wait_until(lambda: client.get_job_task_counts("bench").task_counts.completed == TASKS)
        elapsed = time.time() - started
        assert client.get_job_task_counts("bench").task_counts.succeeded == TASKS
        client.begin_delete_pool("bench", polling_interval=1).result()
        return TASKS / elapsed
    finally:
        daemon.stop()


def srun_rate(cluster):
    allocations = [cluster.run("sbatch", "--parsable", "--nodes=1", "--ntasks=1", "--cpus-per-task=1", "--job-name=srun-loop",
                               "--output=/dev/null", "--wrap", "exec sleep infinity").stdout.strip() for _ in range(2)]
    wait_until(lambda: all(cluster.allocations().get(a, ("",))[0] == "RUNNING" for a in allocations))
    env = dict(os.environ, SLURM_CONF=cluster.conf)
    loop = 'for i in $(seq %d); do srun --jobid=%s --overlap --nodes=1 --ntasks=1 --cpus-per-task=1 --quiet /bin/true || exit 1; done'
    started = time.time()
    loops = [subprocess.Popen(["/bin/sh", "-c", loop % (TASKS // 2, a)], env=env) for a in allocations]
    assert all(p.wait() == 0 for p in loops)
    elapsed = time.time() - started
    cluster.run("scancel", *allocations)
    return (TASKS // 2) * 2 / elapsed


def main():
    directory = tempfile.mkdtemp(prefix="bookend-slurm-bench-")
    subprocess.run([CLUSTER, "start", directory], check=True, stdout=subprocess.DEVNULL)
    try:
        cluster = Cluster(directory)
        baseline = srun_rate(cluster)
        bookend = bookend_rate(cluster)
        print("tasks: %d on 2 Slurm nodes (2 steps at a time)" % TASKS)
        print("srun from shell loops:     %6.1f tasks/s" % baseline)
        print("Bookend via Slurm steps:   %6.1f tasks/s" % bookend)
        print("ratio Bookend / srun loop: %6.2f" % (bookend / baseline))
    finally:
        subprocess.run([CLUSTER, "stop", directory])


if __name__ == "__main__":
    main()

"""Slurm-backed pools against a real (throw-away) Slurm cluster, through the official azure-batch SDK (15.x).

Every node is a Slurm allocation and every execution a job step in it: these tests look at both sides,
Bookend's records (API, SQL) and Slurm's (squeue), and at what the commands themselves saw.
"""
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time

import pytest

from azure.batch import models

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

POOL = "SlurmPool"
JOB = "SlurmJob"
SHARED = "$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"


def wait_until(condition, timeout=90, interval=0.2, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(interval)
    raise AssertionError("%s not met within %ss" % (what, timeout))


@pytest.fixture
def runs():
    """A folder every task account can append to: one file per task or preparation, one line per run."""
    directory = tempfile.mkdtemp(prefix="bookend-slurm-runs-")
    os.chmod(directory, 0o1777)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def lines(path):
    try:
        with open(path) as handle:
            return handle.read().splitlines()
    except FileNotFoundError:
        return []


def make_pool(client, nodes=2, metadata=None):
    client.create_pool(models.BatchPoolCreateOptions(
        id=POOL, vm_size="standard_d1_v2", target_dedicated_nodes=nodes, task_slots_per_node=1, metadata=metadata))
    wait_until(lambda: client.get_pool(POOL).allocation_state == models.AllocationState.STEADY, what="pool steady")
    wait_until(lambda: [n.state for n in client.list_nodes(POOL)] == [models.BatchNodeState.IDLE] * nodes,
               what="nodes idle")


def allocations_by_node(daemon):
    return {row["id"]: row["slurm_job_id"] for row in daemon.sql(
        "SELECT id, slurm_job_id FROM node WHERE provider = 'slurm' AND removed_time IS NULL")}


def add_tasks(client, commands):
    tasks = [models.BatchTaskCreateOptions(id=task_id, command_line=command) for task_id, command in commands]
    result = client.create_tasks(JOB, tasks)
    assert all(item.status == models.BatchTaskAddStatus.SUCCESS for item in result.result_values)


def all_completed(client):
    return all(task.state == models.BatchTaskState.COMPLETED for task in client.list_tasks(JOB))


def test_job_prep_release_runs_as_steps_in_each_nodes_allocation(cluster, daemon_factory):
    daemon = daemon_factory("--node-provider", "slurm")
    client = daemon.client()
    make_pool(client)
    allocations = allocations_by_node(daemon)
    assert len(allocations) == 2 and len(set(allocations.values())) == 2
    known = cluster.allocations()
    for node in client.list_nodes(POOL):
        # The Slurm node the allocation landed on.
        assert node.ip_address == "localhost"
        state, name = known[allocations[node.id]]
        assert state == "RUNNING" and name == "bookend-%s-%s" % (POOL, node.id)

    client.create_job(models.BatchJobCreateOptions(
        id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL),
        job_preparation_task=models.BatchJobPreparationTask(
            command_line="/bin/sh -c 'echo \"$AZ_BATCH_NODE_ID prep $SLURM_JOB_ID.$SLURM_STEP_ID\" > \"%s\"'" % SHARED),
        job_release_task=models.BatchJobReleaseTask(command_line="/bin/sh -c 'rm \"%s\"'" % SHARED)))
    commands = [("task%03d" % index,
                 "/bin/sh -c 'echo \"$AZ_BATCH_TASK_ID $SLURM_JOB_ID $SLURM_STEP_ID $(id -u)\" | tee -a \"%s\"'" % SHARED)
                for index in range(1, 9)]
    commands.append(("fails", "/bin/sh -c 'exit 3'"))
    add_tasks(client, commands)
    wait_until(lambda: all_completed(client), what="all tasks completed")

    tasks = {task.id: task for task in client.list_tasks(JOB)}
    assert tasks["fails"].execution_info.exit_code == 3
    for index in range(1, 9):
        task = tasks["task%03d" % index]
        assert task.execution_info.exit_code == 0
        # What the command saw: its node's allocation, a step of it, and not root.
        task_id, job_id, step_id, uid = b"".join(
            client.download_task_file(JOB, task.id, "stdout.txt")).decode().split()
        assert task_id == task.id
        assert job_id == allocations[task.node_info.node_id]
        assert int(step_id) >= 0
        assert int(uid) != 0

    prepared = 0
    for node_id, allocation in allocations.items():
        try:
            text = b"".join(client.download_node_file(POOL, node_id, "shared/job_prep_and_release.txt")).decode()
        except Exception:  # a node that ran no task was never prepared
            continue
        prepared += 1
        first, *rest = text.splitlines()
        # Preparation ran once on the node, as a step of its allocation, before its first task.
        node, _, step = first.split()
        assert node == node_id and step.split(".")[0] == allocation
        assert rest and all(line.split()[1] == allocation for line in rest)
    assert prepared >= 1
    preparations = daemon.sql("SELECT node_pk, count(*) AS runs FROM execution WHERE kind = 'preparation' GROUP BY node_pk")
    assert len(preparations) == prepared and all(row["runs"] == 1 for row in preparations)

    terminate = models._models.BatchJobTerminateOptions(termination_reason="SlurmDone")  # pylint: disable=protected-access
    client.begin_terminate_job(JOB, terminate, polling_interval=1).result()
    wait_until(lambda: client.get_job(JOB).state == models.BatchJobState.COMPLETED, what="job completed")
    statuses = list(client.list_job_preparation_and_release_task_status(JOB))
    assert len(statuses) == prepared
    for status in statuses:
        print("%s: prep exit %s, release exit %s" % (status.node_id, status.job_preparation_task_execution_info.exit_code,
                                                     status.job_release_task_execution_info.exit_code))
        assert status.job_preparation_task_execution_info.exit_code == 0
        assert status.job_release_task_execution_info.exit_code == 0
    releases = daemon.sql("SELECT node_pk, count(*) AS runs FROM execution WHERE kind = 'release' GROUP BY node_pk")
    assert len(releases) == prepared and all(row["runs"] == 1 for row in releases)

    # Deleting the pool cancels its allocations.
    client.begin_delete_job(JOB, polling_interval=1).result()
    client.begin_delete_pool(POOL, polling_interval=1).result()
    wait_until(lambda: all(cluster.allocations().get(job_id, ("GONE",))[0] not in ("PENDING", "RUNNING")
                           for job_id in allocations.values()), what="allocations cancelled")


def test_pool_metadata_chooses_slurm_and_a_kill_of_the_daemon_runs_nothing_twice(cluster, daemon_factory, runs):
    # The daemon's default stays local: the pool asks for Slurm through its metadata.
    daemon = daemon_factory()
    client = daemon.client()
    make_pool(client, metadata=[models.BatchMetadataItem(name="bookend.nodeProvider", value="slurm")])
    assert len(allocations_by_node(daemon)) == 2
    client.create_job(models.BatchJobCreateOptions(
        id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL),
        job_preparation_task=models.BatchJobPreparationTask(
            command_line="/bin/sh -c 'echo $SLURM_JOB_ID >> %s/prep-$AZ_BATCH_NODE_ID'" % runs)))
    add_tasks(client, [("t%d" % index, "/bin/sh -c 'echo $SLURM_JOB_ID >> %s/$AZ_BATCH_TASK_ID; sleep 4'" % runs)
                       for index in range(4)])
    wait_until(lambda: sum(task.state == models.BatchTaskState.RUNNING for task in client.list_tasks(JOB)) == 2
               and len([name for name in os.listdir(runs) if name.startswith("t")]) == 2, what="two tasks running")

    daemon.kill9()
    # The steps go on without the daemon: srun runs under the shims, in sessions of their own.
    steps = cluster.run("squeue", "--noheader", "--steps", "--format=%i|%j").stdout
    assert "bookend-execution-" in steps
    daemon.start()
    client = daemon.client()
    wait_until(lambda: all_completed(client), what="all tasks completed after the restart")
    for task in client.list_tasks(JOB):
        assert task.execution_info.exit_code == 0
        assert len(lines(os.path.join(runs, task.id))) == 1, "task %s ran more than once" % task.id
    for name in os.listdir(runs):
        assert len(lines(os.path.join(runs, name))) == 1, "%s ran more than once" % name


def test_slurmctld_killed_and_restarted_mid_job_fails_and_reruns_nothing(cluster, daemon_factory, runs):
    daemon = daemon_factory("--node-provider", "slurm")
    client = daemon.client()
    make_pool(client)
    client.create_job(models.BatchJobCreateOptions(id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL)))
    add_tasks(client, [("t%d" % index, "/bin/sh -c 'echo run >> %s/$AZ_BATCH_TASK_ID; sleep 3'" % runs)
                       for index in range(4)])
    wait_until(lambda: len(os.listdir(runs)) == 2, what="two tasks running")
    # Slurm's own loss is not what this tests: a slurmctld killed before it saved its state forgets
    # allocations (the nodes are then lost, as the scancel test shows) and hands their ids out again.
    running = time.time()
    wait_until(lambda: cluster.saved_state_since(running), what="slurmctld saved its state")
    try:
        cluster.script("kill-ctld")
        wait_until(lambda: any("Slurm is unavailable" in line for line in list(daemon.log)), what="provider unavailable")
        # The nodes say so too (Azure's node errors).
        wait_until(lambda: all(node.errors and node.errors[0].code == "SlurmUnavailable" for node in client.list_nodes(POOL)),
                   what="nodes show SlurmUnavailable")
        # The running steps end while slurmctld is away; nothing is failed, nothing new starts.
        wait_until(lambda: sum(task.state == models.BatchTaskState.COMPLETED for task in client.list_tasks(JOB)) >= 2,
                   what="running steps recorded")
        for task in client.list_tasks(JOB):
            assert task.state != models.BatchTaskState.COMPLETED or task.execution_info.exit_code == 0
    finally:
        cluster.script("start-ctld")
    wait_until(lambda: all_completed(client), what="all tasks completed after slurmctld's restart")
    for task in client.list_tasks(JOB):
        assert task.execution_info.exit_code == 0
        assert task.execution_info.retry_count == 0
        assert lines(os.path.join(runs, task.id)) == ["run"], "task %s ran more than once" % task.id
    wait_until(lambda: any("Slurm answers again" in line for line in list(daemon.log)), what="provider available again")
    assert not any(node.errors for node in client.list_nodes(POOL))


def test_a_resize_slurm_cannot_serve_can_be_stopped(cluster, daemon_factory, runs):
    """A node asked of a Slurm that does not answer waits in `creating` (and says why); stopping the
    resize drops it, as Batch drops nodes a stopped resize had not allocated, and the pool settles
    with the node it had. Before, the pool stayed `resizing`: stop-resize kept the waiting node and a
    new resize was refused while the old one ran."""
    daemon = daemon_factory("--node-provider", "slurm")
    client = daemon.client()
    make_pool(client, nodes=1)
    before = [node.id for node in client.list_nodes(POOL)]
    # As in the test above: a slurmctld killed before it saved its state forgets this pool's allocation
    # and brings back the earlier tests' cancelled ones, which then hold the node's CPUs; the resize
    # at the end waited minutes for Slurm to notice. slurmctld saves only after a change, and the
    # allocation's start may have been saved already, or not yet: a change made now (a comment on the
    # allocation) is saved within seconds, with everything before it.
    changed = time.time()
    for allocation in allocations_by_node(daemon).values():
        cluster.run("scontrol", "update", "JobId=%s" % allocation, "Comment=saved-before-the-kill")
    wait_until(lambda: cluster.saved_state_since(changed), what="slurmctld saved its state")
    try:
        cluster.script("kill-ctld")
        wait_until(lambda: any("Slurm is unavailable" in line for line in list(daemon.log)), what="provider unavailable")
        client.begin_resize_pool(POOL, models.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=1)
        wait_until(lambda: any(node.state == models.BatchNodeState.CREATING and node.errors
                               and node.errors[0].code == "SlurmUnavailable" for node in client.list_nodes(POOL)),
                   what="the new node waits for Slurm and says so")
        assert client.get_pool(POOL).allocation_state == models.AllocationState.RESIZING
        client.begin_stop_pool_resize(POOL, polling_interval=1)
        wait_until(lambda: client.get_pool(POOL).allocation_state == models.AllocationState.STEADY,
                   what="the stopped resize settles although Slurm still does not answer")
        pool = client.get_pool(POOL)
        assert pool.target_dedicated_nodes == 1 and pool.current_dedicated_nodes == 1
        assert [node.id for node in client.list_nodes(POOL)] == before
    finally:
        cluster.script("start-ctld")
    # A resize is accepted again once it has settled.
    client.begin_resize_pool(POOL, models.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=1).result()


def test_scancel_of_an_allocation_requeues_its_task_and_prepares_the_replacement(cluster, daemon_factory, runs):
    daemon = daemon_factory("--node-provider", "slurm")
    client = daemon.client()
    make_pool(client)
    client.create_job(models.BatchJobCreateOptions(
        id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL),
        job_preparation_task=models.BatchJobPreparationTask(
            command_line="/bin/sh -c 'echo $SLURM_JOB_ID >> %s/prep-$AZ_BATCH_NODE_ID'" % runs)))
    add_tasks(client, [("long", "/bin/sh -c 'echo $SLURM_JOB_ID >> %s/long; sleep 5'" % runs)])
    wait_until(lambda: len(lines(os.path.join(runs, "long"))) == 1, what="the task running")
    first_node = client.get_task(JOB, "long").node_info.node_id
    allocation = allocations_by_node(daemon)[first_node]
    cluster.run("scancel", allocation)

    wait_until(lambda: all_completed(client), what="the task completed on another node")
    task = client.get_task(JOB, "long")
    assert task.execution_info.exit_code == 0
    assert task.execution_info.requeue_count >= 1
    assert task.node_info.node_id != first_node
    # The lost node left; a replacement keeps the pool at its size.
    nodes = [node.id for node in client.list_nodes(POOL)]
    assert first_node not in nodes
    wait_until(lambda: len(list(client.list_nodes(POOL))) == 2, what="replacement node")
    # The run that was lost happened in the cancelled allocation; the one that completed in another.
    seen = lines(os.path.join(runs, "long"))
    assert seen[0] == allocation and seen[-1] != allocation
    # Preparation ran on the node that completed the task, before it, in that node's allocation.
    final = task.node_info.node_id
    assert lines(os.path.join(runs, "prep-" + final)) == [allocations_by_node(daemon)[final]]
    assert any("is lost" in line and allocation in line for line in list(daemon.log))


def test_terminate_and_wall_clock_end_the_remote_command(cluster, daemon_factory, runs):
    daemon = daemon_factory("--node-provider", "slurm")
    client = daemon.client()
    make_pool(client)
    client.create_job(models.BatchJobCreateOptions(id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL)))
    # Each command writes the pid it runs under (on the Slurm node), then sleeps far longer than the test.
    command = "/bin/sh -c 'echo $$ > %s/$AZ_BATCH_TASK_ID; exec sleep 300'" % runs
    client.create_tasks(JOB, [
        models.BatchTaskCreateOptions(id="terminated", command_line=command),
        models.BatchTaskCreateOptions(id="timed", command_line=command,
                                      constraints=models.BatchTaskConstraints(max_wall_clock_time="PT3S"))])
    wait_until(lambda: all(lines(os.path.join(runs, name)) for name in ("terminated", "timed")), what="both running")
    pids = {name: int(lines(os.path.join(runs, name))[0]) for name in ("terminated", "timed")}
    client.terminate_task(JOB, "terminated")
    wait_until(lambda: all_completed(client), what="both ended")
    for name, pid in pids.items():
        task = client.get_task(JOB, name)
        assert task.execution_info.result == models.BatchTaskExecutionResult.FAILURE
        assert task.execution_info.failure_info.code == "TaskEnded"
        # The command itself ended (Slurm cancelled its step), not only srun on the daemon's side.
        wait_until(lambda: not os.path.exists("/proc/%d" % pid), timeout=30, what="the step's command of %s ended" % name)
    wait_until(lambda: "bookend-execution-" not in cluster.run(
        "squeue", "--noheader", "--steps", "--format=%i|%j").stdout, timeout=30, what="no step left")


def test_a_refused_allocation_names_sbatch_and_slurms_message_on_the_node(cluster, daemon_factory):
    daemon = daemon_factory("--node-provider", "slurm")
    client = daemon.client()
    client.create_pool(models.BatchPoolCreateOptions(
        id=POOL, vm_size="standard_d1_v2", target_dedicated_nodes=1, task_slots_per_node=1,
        metadata=[models.BatchMetadataItem(name="bookend.slurm.partition", value="nosuchpartition")]))

    def refused():
        nodes = list(client.list_nodes(POOL))
        return nodes and nodes[0].errors and nodes[0].errors[0].code == "SlurmAllocationRefused"
    wait_until(refused, what="the node shows the refusal")
    node = list(client.list_nodes(POOL))[0]
    assert node.state == models.BatchNodeState.CREATING
    message = node.errors[0].message
    assert "sbatch" in message and "--partition=nosuchpartition" in message and "invalid partition" in message.lower()
    assert any("Slurm refused the allocation" in line for line in list(daemon.log))
    # Slurm itself answers: the provider is not reported unavailable for one refused request.
    assert not any("Slurm is unavailable" in line for line in list(daemon.log))


def test_slurm_node_root_holds_the_nodes_folders_and_must_be_reachable(cluster, daemon_factory):
    # The folders of Slurm nodes live under --slurm-node-root (a file system the cluster shares), not
    # under the data directory.
    shared = tempfile.mkdtemp(prefix="bookend-slurm-root-")
    os.chmod(shared, 0o755)
    try:
        daemon = daemon_factory("--node-provider", "slurm", "--slurm-node-root", shared)
        client = daemon.client()
        make_pool(client, nodes=1)
        client.create_job(models.BatchJobCreateOptions(
            id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL),
            job_preparation_task=models.BatchJobPreparationTask(command_line="/bin/pwd")))
        add_tasks(client, [("where", "/bin/pwd")])
        wait_until(lambda: all_completed(client), what="the task completed")
        task = client.get_task(JOB, "where")
        assert task.execution_info.exit_code == 0
        folder = b"".join(client.download_task_file(JOB, "where", "stdout.txt")).decode().strip()
        assert folder.startswith(os.path.realpath(shared) + "/"), folder
        # The command ran in the task's wd folder; its output files sit beside that folder.
        assert os.path.basename(folder) == "wd"
        assert os.path.isfile(os.path.join(os.path.dirname(folder), "stdout.txt"))
        node_id = task.node_info.node_id
        assert not os.path.exists(os.path.join(daemon.data_dir, "nodes", node_id))
    finally:
        shutil.rmtree(shared, ignore_errors=True)

    if os.geteuid() != 0:
        return
    # As root, task accounts must be able to reach that root: a private folder on the way stops the
    # daemon at once, naming the folder and the flag, instead of failing every task later.
    scratch = tempfile.mkdtemp(prefix="bookend-slurm-private-")
    os.chmod(scratch, 0o755)
    try:
        private = os.path.join(scratch, "private")
        os.mkdir(private, 0o700)
        result = subprocess.run(
            [os.environ.get("BOOKEND_BIN") or os.path.join(ROOT, ".build", "debug", "bookend"), "serve",
             "--data-dir", os.path.join(scratch, "data"), "--listen", "127.0.0.1:0", "--account", "slurmacct",
             "--node-provider", "slurm", "--slurm-node-root", os.path.join(private, "nodes")],
            capture_output=True, text=True, timeout=60, env=dict(os.environ, SLURM_CONF=cluster.conf))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert private in message and "--slurm-node-root" in message, message


def test_doctor_checks_slurm_when_the_directory_holds_slurm_nodes(cluster, daemon_factory):
    daemon = daemon_factory("--node-provider", "slurm")
    make_pool(daemon.client(), nodes=1)

    def doctor(env):
        result = subprocess.run([daemon.binary, "doctor", "--data-dir", daemon.data_dir, "--format", "json"],
                                capture_output=True, text=True, timeout=120, env=env)
        checks = {check["name"]: check for check in json.loads(result.stdout)}
        return result.returncode, checks

    # No --node-provider: the Slurm node in the directory is reason enough to ask slurmctld.
    code, checks = doctor(dict(os.environ, SLURM_CONF=cluster.conf))
    assert checks["slurm"]["status"] == "OK", checks["slurm"]
    partitions = cluster.run("sinfo", "--noheader", "--format=%P").stdout.split()
    assert partitions and all(partition in checks["slurm"]["detail"] for partition in partitions)
    # A slurm.conf that does not exist: FAIL at once, naming it, and doctor exits 1.
    code, checks = doctor(dict(os.environ, SLURM_CONF="/nonexistent/slurm.conf"))
    assert code == 1
    assert checks["slurm"]["status"] == "FAIL" and "/nonexistent/slurm.conf" in checks["slurm"]["detail"], checks["slurm"]
    # A slurm.conf whose slurmctld does not answer (nothing listens on its port): FAIL with
    # Slurm's own message, and the fix.
    dead = os.path.join(cluster.directory, "dead-port.conf")
    with open(cluster.conf) as source, open(dead, "w") as target:
        target.write("".join("SlurmctldPort=9\n" if line.startswith("SlurmctldPort=") else line for line in source))
    code, checks = doctor(dict(os.environ, SLURM_CONF=dead))
    assert code == 1
    assert checks["slurm"]["status"] == "FAIL" and "sinfo" in checks["slurm"]["detail"], checks["slurm"]
    assert "slurm controller" in checks["slurm"]["detail"].lower()
    assert "slurmctld" in checks["slurm"]["fix"]


def test_a_pool_spans_two_slurm_hosts_each_prepared_and_released_once(cluster, daemon_factory):
    """Two Slurm nodes that are two hosts as far as the network goes (a slurmd each, in network
    namespaces of their own): one allocation on each, and preparation and release once on each."""
    if not cluster.wide_nodes:
        pytest.skip("this machine cannot make network namespaces, so the cluster has one Slurm node")
    daemon = daemon_factory("--node-provider", "slurm")
    client = daemon.client()
    # 2 slots per node: each allocation holds 2 CPUs, all a wide node has, so the two land apart.
    client.create_pool(models.BatchPoolCreateOptions(
        id=POOL, vm_size="standard_d1_v2", target_dedicated_nodes=2, task_slots_per_node=2,
        metadata=[models.BatchMetadataItem(name="bookend.slurm.partition", value="wide")]))
    wait_until(lambda: [n.state for n in client.list_nodes(POOL)] == [models.BatchNodeState.IDLE] * 2, what="nodes idle")
    hosts = {node.id: node.ip_address for node in client.list_nodes(POOL)}
    assert sorted(hosts.values()) == sorted(cluster.wide_nodes), hosts

    here = os.readlink("/proc/self/ns/net")
    where = "echo \"$SLURMD_NODENAME $(readlink /proc/self/ns/net)\""
    client.create_job(models.BatchJobCreateOptions(
        id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL),
        job_preparation_task=models.BatchJobPreparationTask(command_line="/bin/sh -c '%s > \"%s\"'" % (where, SHARED)),
        job_release_task=models.BatchJobReleaseTask(command_line="/bin/sh -c 'cat \"%s\"; %s'" % (SHARED, where))))
    add_tasks(client, [("task%02d" % index, "/bin/sh -c '%s'" % where) for index in range(12)])
    wait_until(lambda: all_completed(client), what="all tasks completed")

    networks = {}
    for task in client.list_tasks(JOB):
        assert task.execution_info.exit_code == 0
        host, network = b"".join(client.download_task_file(JOB, task.id, "stdout.txt")).decode().split()
        # The command ran on the Slurm host of the node Bookend records for it, in that host's network.
        assert host == hosts[task.node_info.node_id]
        assert network != here
        networks.setdefault(host, set()).add(network)
    # Spread (the default) puts tasks on both nodes; each host has one network, not the other's.
    assert sorted(networks) == sorted(cluster.wide_nodes)
    assert all(len(seen) == 1 for seen in networks.values())
    assert networks[cluster.wide_nodes[0]] != networks[cluster.wide_nodes[1]]

    terminate = models._models.BatchJobTerminateOptions(termination_reason="Wide")  # pylint: disable=protected-access
    client.begin_terminate_job(JOB, terminate, polling_interval=1).result()
    wait_until(lambda: client.get_job(JOB).state == models.BatchJobState.COMPLETED, what="job completed")
    statuses = list(client.list_job_preparation_and_release_task_status(JOB))
    # Every node that ran a task was prepared once and released once, on its own host.
    ran_on = {task.node_info.node_id for task in client.list_tasks(JOB)}
    assert ran_on == set(hosts) and {status.node_id for status in statuses} == ran_on
    for status in statuses:
        assert status.job_preparation_task_execution_info.exit_code == 0
        assert status.job_release_task_execution_info.exit_code == 0
    for kind in ("preparation", "release"):
        rows = daemon.sql("SELECT node_pk, count(*) AS runs FROM execution WHERE kind = '%s' GROUP BY node_pk" % kind)
        assert len(rows) == len(ran_on) and all(row["runs"] == 1 for row in rows)

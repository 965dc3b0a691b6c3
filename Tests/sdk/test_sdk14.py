"""The JobPrepRelease scenario with the older msrest-based azure-batch 14.2.0 SDK (as pinned by older az CLIs)."""
import time

import pytest

batch = pytest.importorskip("azure.batch")
if not hasattr(batch, "BatchServiceClient"):
    pytest.skip("SDK 14 tests need azure-batch 14.x", allow_module_level=True)

import azure.batch.models as batchmodels  # noqa: E402
from azure.batch import BatchServiceClient  # noqa: E402
from azure.batch.batch_auth import SharedKeyCredentials  # noqa: E402

POOL = "Sdk14Pool"
JOB = "Sdk14Job"
SHARED = "$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"


def wait_until(condition, timeout=120, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError("condition not met within %ss" % timeout)


def test_job_prep_release_sdk14(bookend):
    client = BatchServiceClient(SharedKeyCredentials(bookend["account"], bookend["key"]), batch_url=bookend["endpoint"])
    client.pool.add(batchmodels.PoolAddParameter(id=POOL, vm_size="standard_d1_v2", target_dedicated_nodes=2,
                                                 task_slots_per_node=1))
    assert client.pool.exists(POOL)
    assert not client.pool.exists("missing-pool")
    wait_until(lambda: client.pool.get(POOL).allocation_state == batchmodels.AllocationState.steady)

    client.job.add(batchmodels.JobAddParameter(
        id=JOB, pool_info=batchmodels.PoolInformation(pool_id=POOL),
        job_preparation_task=batchmodels.JobPreparationTask(
            command_line="/bin/sh -c 'echo \"$AZ_BATCH_NODE_ID tasks:\" > \"%s\"'" % SHARED),
        job_release_task=batchmodels.JobReleaseTask(command_line="/bin/sh -c 'rm \"%s\"'" % SHARED)))
    tasks = [batchmodels.TaskAddParameter(
        id="task%03d" % index, command_line="/bin/sh -c 'echo \"  $AZ_BATCH_TASK_ID\" >> \"%s\"'" % SHARED)
        for index in range(1, 9)]
    result = client.task.add_collection(JOB, tasks)
    assert all(item.status == batchmodels.TaskAddStatus.success for item in result.value)

    # SDK14 sends timeout=30 with every *Options object and follows odata.nextLink verbatim.
    options = batchmodels.TaskListOptions(max_results=3)
    wait_until(lambda: all(task.state == batchmodels.TaskState.completed
                           for task in client.task.list(JOB, task_list_options=options)))
    assert len(list(client.task.list(JOB, task_list_options=options))) == 8

    found = 0
    for node in client.compute_node.list(POOL):
        try:
            data = b"".join(client.file.get_from_compute_node(POOL, node.id, "shared/job_prep_and_release.txt"))
        except batchmodels.BatchErrorException as error:
            assert error.error.code == "FileNotFound"
            continue
        assert data.decode().startswith(node.id + " tasks:")
        found += data.decode().count("task0")
    assert found == 8

    client.job.terminate(JOB)  # no body, Content-Length: 0
    wait_until(lambda: client.job.get(JOB).state == batchmodels.JobState.completed)
    assert client.job.get(JOB).execution_info.terminate_reason == "UserTerminate"
    for status in client.job.list_preparation_and_release_task_status(JOB):
        assert status.job_preparation_task_execution_info.exit_code == 0
        assert status.job_release_task_execution_info.exit_code == 0

    client.job.delete(JOB)
    wait_until(lambda: JOB not in [job.id for job in client.job.list()])
    client.pool.delete(POOL)
    wait_until(lambda: not client.pool.exists(POOL))
    with pytest.raises(batchmodels.BatchErrorException) as missing:
        client.job.get(JOB)
    assert missing.value.error.code == "JobNotFound"


def test_operations_surface_sdk14(bookend):
    """Everyday SDK 14 calls: PATCH/PUT job, disable/enable, task update/terminate/reactivate, files, nodes, pools."""
    client = BatchServiceClient(SharedKeyCredentials(bookend["account"], bookend["key"]), batch_url=bookend["endpoint"])
    pool_id, job_id = "s14-pool", "s14-job"
    client.pool.add(batchmodels.PoolAddParameter(id=pool_id, vm_size="small", target_dedicated_nodes=1))
    wait_until(lambda: [n.state for n in client.compute_node.list(pool_id)] == [batchmodels.ComputeNodeState.idle])
    client.pool.patch(pool_id, batchmodels.PoolPatchParameter(metadata=[batchmodels.MetadataItem(name="k", value="v")]))
    assert client.pool.get(pool_id).metadata[0].name == "k"
    client.pool.resize(pool_id, batchmodels.PoolResizeParameter(target_dedicated_nodes=2))
    wait_until(lambda: client.pool.get(pool_id).allocation_state == batchmodels.AllocationState.steady)
    client.pool.stop_resize(pool_id)
    node = next(iter(client.compute_node.list(pool_id)))
    client.compute_node.disable_scheduling(pool_id, node.id)
    assert client.compute_node.get(pool_id, node.id).scheduling_state == batchmodels.SchedulingState.disabled
    client.compute_node.enable_scheduling(pool_id, node.id)
    client.compute_node.reboot(pool_id, node.id)
    wait_until(lambda: client.compute_node.get(pool_id, node.id).state == batchmodels.ComputeNodeState.idle)

    client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
    client.job.patch(job_id, batchmodels.JobPatchParameter(priority=7))
    assert client.job.get(job_id).priority == 7
    client.job.update(job_id, batchmodels.JobUpdateParameter(pool_info=batchmodels.PoolInformation(pool_id=pool_id)))
    assert client.job.get(job_id).priority == 0
    client.job.disable(job_id, batchmodels.DisableJobOption.requeue)
    wait_until(lambda: client.job.get(job_id).state == batchmodels.JobState.disabled)
    client.job.enable(job_id)
    wait_until(lambda: client.job.get(job_id).state == batchmodels.JobState.active)

    client.task.add(job_id, batchmodels.TaskAddParameter(id="w", command_line="/bin/sh -c 'echo x > f.txt; exit 1'"))
    client.task.add(job_id, batchmodels.TaskAddParameter(id="s", command_line="/bin/sleep 60"))
    wait_until(lambda: client.task.get(job_id, "w").state == batchmodels.TaskState.completed)
    files = [f.name for f in client.file.list_from_task(job_id, "w", recursive=True)]
    assert "wd/f.txt" in files
    headers = client.file.get_properties_from_task(job_id, "w", "wd/f.txt", raw=True).headers
    assert int(headers["Content-Length"]) == 2 and str(headers["ocp-batch-file-isdirectory"]).lower() == "false"
    client.task.reactivate(job_id, "w")
    wait_until(lambda: client.task.get(job_id, "s").state == batchmodels.TaskState.running)
    client.task.update(job_id, "s", constraints=batchmodels.TaskConstraints(max_task_retry_count=3))
    assert client.task.get(job_id, "s").constraints.max_task_retry_count == 3
    client.task.terminate(job_id, "s")
    wait_until(lambda: client.task.get(job_id, "s").state == batchmodels.TaskState.completed)
    options = batchmodels.TaskListOptions(filter="executionInfo/result eq 'failure'")
    wait_until(lambda: sorted(t.id for t in client.task.list(job_id, task_list_options=options)) == ["s", "w"])
    counts = client.job.get_task_counts(job_id)
    assert counts.task_counts.failed == 2
    client.job.delete(job_id)
    client.pool.delete(pool_id)
    wait_until(lambda: not client.pool.exists(pool_id))


def test_blocked_job_reads_as_a_scheduling_error_sdk14(bookend):
    """SDK 14 (msrest) parses Bookend's extra bookendWaitReason and sees Azure's schedulingError."""
    client = BatchServiceClient(SharedKeyCredentials(bookend["account"], bookend["key"]), batch_url=bookend["endpoint"])
    pool_id, job_id = "s14-blocked-pool", "s14-blocked-job"
    client.pool.add(batchmodels.PoolAddParameter(id=pool_id, vm_size="small", target_dedicated_nodes=1))
    client.job.add(batchmodels.JobAddParameter(
        id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id),
        job_preparation_task=batchmodels.JobPreparationTask(command_line="/bin/sh -c 'echo boom >&2; exit 3'")))
    client.task.add(job_id, batchmodels.TaskAddParameter(id="t1", command_line="/bin/true"))
    wait_until(lambda: any(d.name == "StderrTail" for d in
                           (client.job.get(job_id).execution_info.scheduling_error or batchmodels.JobSchedulingError(category="usererror")).details or []))
    error = client.job.get(job_id).execution_info.scheduling_error
    assert error.code == "JobPreparationTaskFailed"
    assert [d.value for d in error.details if d.name == "ExitCode"] == ["3"]
    assert client.task.get(job_id, "t1").state == batchmodels.TaskState.active
    client.job.delete(job_id)
    client.pool.delete(pool_id)

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

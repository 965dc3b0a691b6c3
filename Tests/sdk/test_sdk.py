"""The JobPrepRelease scenario with the official azure-batch SDK (15.x), unmodified, against `bookend serve`."""
import os
import subprocess
import time

import pytest

batch = pytest.importorskip("azure.batch")
if not hasattr(batch, "BatchClient"):
    pytest.skip("SDK 15 tests need azure-batch 15.x", allow_module_level=True)

from azure.batch import BatchClient, models  # noqa: E402
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                   ResourceNotFoundError, ServiceRequestError)

POOL = "JobPrepReleaseSamplePool"
JOB = "JobPrepReleaseSampleJob"
SHARED = "$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"


def client_for(bookend, key=None):
    return BatchClient(bookend["endpoint"], AzureNamedKeyCredential(bookend["account"], key or bookend["key"]))


def wait_until(condition, timeout=120, interval=0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(interval)
    raise AssertionError("condition not met within %ss" % timeout)


def test_job_prep_release(bookend):
    client = client_for(bookend)
    client.create_pool(models.BatchPoolCreateOptions(
        id=POOL, vm_size="standard_d1_v2", target_dedicated_nodes=2, task_slots_per_node=1))
    pool = client.get_pool(POOL)
    assert pool.id == POOL and pool.state == models.BatchPoolState.ACTIVE
    wait_until(lambda: client.get_pool(POOL).allocation_state == models.AllocationState.STEADY)
    assert len(list(client.list_nodes(POOL))) == 2

    client.create_job(models.BatchJobCreateOptions(
        id=JOB,
        pool_info=models.BatchPoolInfo(pool_id=POOL),
        job_preparation_task=models.BatchJobPreparationTask(
            command_line="/bin/sh -c 'echo \"$AZ_BATCH_NODE_ID tasks:\" > \"%s\"'" % SHARED),
        job_release_task=models.BatchJobReleaseTask(command_line="/bin/sh -c 'rm \"%s\"'" % SHARED)))
    job = client.get_job(JOB)
    assert job.state == models.BatchJobState.ACTIVE
    assert job.job_preparation_task.id == "jobpreparation"

    tasks = [models.BatchTaskCreateOptions(
        id="task%03d" % index, command_line="/bin/sh -c 'echo \"  $AZ_BATCH_TASK_ID\" >> \"%s\"'" % SHARED)
        for index in range(1, 9)]
    result = client.create_tasks(JOB, tasks[:4])
    assert sorted(item.task_id for item in result.result_values) == ["task001", "task002", "task003", "task004"]
    collection = client.create_task_collection(JOB, models.BatchTaskGroup(task_values=tasks[4:]))
    assert all(item.status == models.BatchTaskAddStatus.SUCCESS for item in collection.result_values)

    wait_until(lambda: all(task.state == models.BatchTaskState.COMPLETED for task in client.list_tasks(JOB)))
    listed = list(client.list_tasks(JOB, max_results=3))
    assert [task.id for task in listed] == ["task%03d" % index for index in range(1, 9)]
    assert all(task.execution_info.exit_code == 0 for task in listed)
    # Paging with a filter and a selection: odata.nextLink must carry both through SDK 15's re-encoding.
    paged = list(client.list_tasks(JOB, filter="state eq 'completed' and startswith(id,'task')", max_results=2,
                                   select=["id", "state"]))
    assert [task.id for task in paged] == ["task%03d" % index for index in range(1, 9)]
    counts = client.get_job_task_counts(JOB)
    assert counts.task_counts.succeeded == 8

    contents = []
    for node in client.list_nodes(POOL):
        try:
            data = b"".join(client.download_node_file(POOL, node.id, "shared/job_prep_and_release.txt"))
        except ResourceNotFoundError:
            continue
        properties = client.get_node_file_properties(POOL, node.id, "shared/job_prep_and_release.txt")
        assert int(properties.content_length) == len(data)
        text = data.decode()
        print("Contents of shared/job_prep_and_release.txt on %s:\n%s" % (node.id, text))
        assert text.startswith(node.id + " tasks:")
        contents.append(text)
    assert contents, "no node had the shared file"
    for index in range(1, 9):
        assert sum(text.count("task%03d" % index) for text in contents) == 1

    # SDK 15.1 does not export BatchJobTerminateOptions and fails without options (client bug, spec §10).
    terminate_options = models._models.BatchJobTerminateOptions(termination_reason="SampleDone")  # pylint: disable=protected-access
    client.begin_terminate_job(JOB, terminate_options, polling_interval=1).result()
    wait_until(lambda: client.get_job(JOB).state == models.BatchJobState.COMPLETED)
    assert client.get_job(JOB).execution_info.termination_reason == "SampleDone"

    statuses = list(client.list_job_preparation_and_release_task_status(JOB))
    assert statuses
    for status in statuses:
        print("%s: prep exit %s, release exit %s" % (status.node_id, status.job_preparation_task_execution_info.exit_code,
                                                     status.job_release_task_execution_info.exit_code))
        assert status.job_preparation_task_execution_info.exit_code == 0
        assert status.job_release_task_execution_info.exit_code == 0
    # The release task removed the shared file on every node that ran preparation.
    for status in statuses:
        with pytest.raises(ResourceNotFoundError):
            b"".join(client.download_node_file(POOL, status.node_id, "shared/job_prep_and_release.txt"))

    client.begin_delete_job(JOB, polling_interval=1).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_job(JOB)
    client.begin_delete_pool(POOL, polling_interval=1).result()
    with pytest.raises(ResourceNotFoundError):
        client.get_pool(POOL)


def test_errors_map_to_sdk_exceptions(bookend):
    client = client_for(bookend)
    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_job("no-such-job")
    assert missing.value.error.code == "JobNotFound"
    client.create_job(models.BatchJobCreateOptions(id="dup", pool_info=models.BatchPoolInfo(pool_id="nopool")))
    with pytest.raises(ResourceExistsError) as exists:
        client.create_job(models.BatchJobCreateOptions(id="DUP", pool_info=models.BatchPoolInfo(pool_id="nopool")))
    assert exists.value.error.code == "JobExists"
    with pytest.raises(HttpResponseError) as invalid:
        client.create_job(models.BatchJobCreateOptions(id="bad id!", pool_info=models.BatchPoolInfo(pool_id="p")))
    assert invalid.value.status_code == 400
    assert [job.id for job in client.list_jobs(filter="startswith(id,'du')")] == ["dup"]
    client.begin_delete_job("dup", polling_interval=1).result()

    wrong = client_for(bookend, key="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    with pytest.raises(HttpResponseError) as denied:
        wrong.get_job("anything")
    assert denied.value.status_code == 403


def test_https_trusts_only_the_daemon_certificate(bookend):
    """Over HTTPS the SDK verifies the daemon's certificate: trusted through REQUESTS_CA_BUNDLE it
    works; with only the public CAs (certifi's bundle, the `requests` default) it refuses to send."""
    if not bookend["tls"]:
        pytest.skip("this run serves plain HTTP (BOOKEND_SDK_TLS=1 runs it over HTTPS)")
    import certifi
    assert bookend["endpoint"].startswith("https://127.0.0.1:")
    client = client_for(bookend)
    client.create_job(models.BatchJobCreateOptions(id="tls-job", pool_info=models.BatchPoolInfo(pool_id="nopool")))
    assert client.get_job("tls-job").id == "tls-job"
    untrusted = BatchClient(bookend["endpoint"], AzureNamedKeyCredential(bookend["account"], bookend["key"]),
                            connection_verify=certifi.where())
    with pytest.raises(ServiceRequestError) as refused:
        untrusted.get_job("tls-job")
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    client.begin_delete_job("tls-job", polling_interval=1).result()


def test_operations_surface(bookend):
    """The other everyday SDK 15 calls, each checked for the exact status code and shape the SDK expects."""
    client = client_for(bookend)
    pool_id, job_id = "surface-pool", "surface-job"
    client.create_pool(models.BatchPoolCreateOptions(id=pool_id, vm_size="small", target_dedicated_nodes=1))
    assert client.pool_exists(pool_id)
    wait_until(lambda: [n.state for n in client.list_nodes(pool_id)] == [models.BatchNodeState.IDLE])
    client.update_pool(pool_id, models.BatchPoolUpdateOptions(
        metadata=[models.BatchMetadataItem(name="owner", value="tests")]))
    assert client.get_pool(pool_id).metadata[0].value == "tests"
    # replace_pool_properties (POST updateproperties): the start task and metadata as a whole.
    client.replace_pool_properties(pool_id, models.BatchPoolReplaceOptions(
        start_task=models.BatchStartTask(command_line="/bin/true"),
        application_package_references=[], metadata=[models.BatchMetadataItem(name="owner", value="replaced")]))
    replaced = client.get_pool(pool_id)
    assert replaced.start_task.command_line == "/bin/true" and [m.value for m in replaced.metadata] == ["replaced"]
    client.replace_pool_properties(pool_id, models.BatchPoolReplaceOptions(application_package_references=[], metadata=[]))
    assert client.get_pool(pool_id).start_task is None
    client.begin_resize_pool(pool_id, models.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=1).result()
    wait_until(lambda: len([n for n in client.list_nodes(pool_id) if n.state == models.BatchNodeState.IDLE]) == 2)
    assert [pool.id for pool in client.list_pools(filter="startswith(id,'surface')", select=["id", "state"])] == [pool_id]
    counts = [c for c in client.list_pool_node_counts() if c.pool_id == pool_id]
    assert counts[0].dedicated.idle == 2 and counts[0].dedicated.total == 2 and counts[0].low_priority.total == 0

    node = next(iter(client.list_nodes(pool_id)))
    client.disable_node_scheduling(pool_id, node.id, models.BatchNodeDisableSchedulingOptions(
        node_disable_scheduling_option=models.BatchNodeDisableSchedulingOption.TASK_COMPLETION))
    assert client.get_node(pool_id, node.id).scheduling_state == models.SchedulingState.DISABLED
    client.enable_node_scheduling(pool_id, node.id)
    # SDK 15.1 fails client-side without options and does not export the options class.
    reboot = models._models.BatchNodeRebootOptions(node_reboot_kind="requeue")  # pylint: disable=protected-access
    client.begin_reboot_node(pool_id, node.id, reboot, polling_interval=1).result()
    wait_until(lambda: client.get_node(pool_id, node.id).state == models.BatchNodeState.IDLE)

    client.create_job(models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id), priority=10))
    client.update_job(job_id, models.BatchJobUpdateOptions(priority=20))
    assert client.get_job(job_id).priority == 20
    job = client.get_job(job_id)
    job.priority = 30
    client.replace_job(job_id, job)
    assert client.get_job(job_id).priority == 30
    client.begin_disable_job(job_id, models.BatchJobDisableOptions(disable_tasks=models.DisableBatchJobOption.WAIT),
                             polling_interval=1).result()
    assert client.get_job(job_id).state == models.BatchJobState.DISABLED
    client.begin_enable_job(job_id, polling_interval=1).result()
    assert client.get_job(job_id).state == models.BatchJobState.ACTIVE

    client.create_task(job_id, models.BatchTaskCreateOptions(
        id="writer", command_line="/bin/sh -c 'mkdir -p out && echo result > out/r.txt && exit 4'"))
    client.create_task(job_id, models.BatchTaskCreateOptions(id="sleeper", command_line="/bin/sleep 60"))
    wait_until(lambda: client.get_task(job_id, "writer").state == models.BatchTaskState.COMPLETED)
    writer = client.get_task(job_id, "writer")
    assert writer.execution_info.result == models.BatchTaskExecutionResult.FAILURE
    assert writer.execution_info.failure_info.category == models.BatchErrorSourceCategory.USER_ERROR
    names = [f.name for f in client.list_task_files(job_id, "writer", recursive=True)]
    assert "wd/out/r.txt" in names and "stdout.txt" in names
    properties = client.get_task_file_properties(job_id, "writer", "wd/out/r.txt")
    assert int(properties.content_length) == 7 and not properties.is_directory
    assert b"".join(client.download_task_file(job_id, "writer", "wd/out/r.txt", ocp_range="bytes=0-2")) == b"res"
    client.delete_task_file(job_id, "writer", "wd/out/r.txt")
    with pytest.raises(ResourceNotFoundError):
        client.get_task_file_properties(job_id, "writer", "wd/out/r.txt")
    client.reactivate_task(job_id, "writer")
    wait_until(lambda: client.get_task(job_id, "writer").execution_info.retry_count == 0
               and client.get_task(job_id, "writer").state == models.BatchTaskState.COMPLETED)

    wait_until(lambda: client.get_task(job_id, "sleeper").state == models.BatchTaskState.RUNNING)
    sleeper = client.get_task(job_id, "sleeper")
    sleeper.constraints = models.BatchTaskConstraints(max_task_retry_count=2)
    client.replace_task(job_id, "sleeper", sleeper)
    assert client.get_task(job_id, "sleeper").constraints.max_task_retry_count == 2
    assert list(client.list_subtasks(job_id, "sleeper")) == []
    client.terminate_task(job_id, "sleeper")
    wait_until(lambda: client.get_task(job_id, "sleeper").state == models.BatchTaskState.COMPLETED)
    assert client.get_task(job_id, "sleeper").execution_info.failure_info.code == "TaskEnded"
    failed = [t.id for t in client.list_tasks(job_id, filter="executionInfo/result eq 'failure'")]
    assert sorted(failed) == ["sleeper", "writer"]
    client.delete_task(job_id, "writer")
    assert [t.id for t in client.list_tasks(job_id)] == ["sleeper"]

    with pytest.raises(HttpResponseError) as conflict:
        client.list_job_preparation_and_release_task_status(job_id).next()
    assert conflict.value.error.code == "JobPreparationTaskNotSpecified"
    client.begin_delete_job(job_id, polling_interval=1).result()
    client.begin_delete_pool(pool_id, polling_interval=1).result()


def test_blocked_job_reads_as_a_scheduling_error(bookend):
    """A preparation that fails on every node: the SDK sees Azure's schedulingError with the failing nodes,
    and parses jobs and tasks that carry Bookend's bookendWaitReason (an unknown property to it)."""
    client = client_for(bookend)
    pool_id, job_id = "blocked-pool", "blocked-job"
    client.create_pool(models.BatchPoolCreateOptions(id=pool_id, vm_size="small", target_dedicated_nodes=2, task_slots_per_node=1))
    client.create_job(models.BatchJobCreateOptions(
        id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id),
        job_preparation_task=models.BatchJobPreparationTask(command_line="/bin/sh -c 'echo boom >&2; exit 3'")))
    client.create_task(job_id, models.BatchTaskCreateOptions(id="t1", command_line="/bin/true"))

    def blocked():
        error = client.get_job(job_id).execution_info.scheduling_error
        return error is not None and sum(1 for d in error.details or [] if d.name == "NodeId") == 2
    wait_until(blocked)
    error = client.get_job(job_id).execution_info.scheduling_error
    assert error.code == "JobPreparationTaskFailed"
    assert error.category == models.BatchErrorSourceCategory.USER_ERROR
    assert [d.value for d in error.details if d.name == "StderrTail"] == ["boom", "boom"]
    assert client.get_task(job_id, "t1").state == models.BatchTaskState.ACTIVE
    # The bookend CLI against the same `bookend serve`: `job wait` stops with status 5 and says why.
    binary = os.environ.get("BOOKEND_BIN") or os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), ".build", "debug", "bookend")
    env = dict(os.environ, BOOKEND_ENDPOINT=bookend["endpoint"], BOOKEND_ACCOUNT=bookend["account"], BOOKEND_KEY=bookend["key"])
    if bookend["ca_cert"]:
        env["BOOKEND_CA_CERT"] = bookend["ca_cert"]  # the daemon serves HTTPS with a certificate made for this run
    waited = subprocess.run([binary, "job", "wait", job_id, "--timeout", "60"], env=env, capture_output=True, text=True, timeout=120)
    assert waited.returncode == 5, waited.stdout + waited.stderr
    assert "is blocked (JobPreparationTaskFailed)" in waited.stderr
    assert waited.stderr.count("stderr: boom") == 2
    why = subprocess.run([binary, "job", "why", job_id, "t1"], env=env, capture_output=True, text=True, timeout=60)
    assert why.returncode == 0 and why.stdout.startswith("task t1 of job %s is blocked" % job_id), why.stdout + why.stderr
    client.begin_delete_job(job_id).result()
    client.begin_delete_pool(pool_id).result()


def test_nodes_carry_agent_image_and_recent_tasks(bookend):
    """The node model SDK 15 parses: nodeAgentInfo, virtualMachineInfo (which it marks required) with
    the pool's image reference, and recentTasks once a task ran there; list_pool_usage_metrics is an
    empty list, not a 404."""
    client = client_for(bookend)
    pool_id, job_id = "wire-pool", "wire-job"
    image = models.BatchVmImageReference(publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest")
    client.create_pool(models.BatchPoolCreateOptions(
        id=pool_id, vm_size="small", target_dedicated_nodes=1,
        virtual_machine_configuration=models.VirtualMachineConfiguration(
            image_reference=image, node_agent_sku_id="batch.node.ubuntu 24.04")))
    wait_until(lambda: [n.state for n in client.list_nodes(pool_id)] == [models.BatchNodeState.IDLE])
    node = next(iter(client.list_nodes(pool_id)))
    assert node.node_agent_info.version and node.node_agent_info.last_update_time == node.allocation_time
    assert node.virtual_machine_info.image_reference.offer == "ubuntu-24_04-lts"
    assert node.virtual_machine_info.image_reference.publisher == "canonical"
    assert not node.recent_tasks

    client.create_job(models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id)))
    client.create_task(job_id, models.BatchTaskCreateOptions(id="ran", command_line="/bin/true"))
    wait_until(lambda: client.get_task(job_id, "ran").state == models.BatchTaskState.COMPLETED)
    recent = client.get_node(pool_id, node.id).recent_tasks
    assert [(t.job_id, t.task_id, t.task_state) for t in recent] == [(job_id, "ran", models.BatchTaskState.COMPLETED)]
    assert recent[0].execution_info.exit_code == 0
    assert recent[0].task_url.endswith("/jobs/%s/tasks/ran" % job_id)
    assert [t.task_id for t in next(iter(client.list_nodes(pool_id))).recent_tasks] == ["ran"]

    assert list(client.list_pool_usage_metrics()) == []
    client.begin_delete_job(job_id, polling_interval=1).result()
    client.begin_delete_pool(pool_id, polling_interval=1).result()

import Foundation

/// Throughput as users see it: the official Python SDK (azure-batch 15, from `make sdk-venv`) adds
/// the tasks with `create_tasks` to a job with preparation and release on 2 nodes × 2 slots of a
/// fresh `bookend serve`, and polls the task counts until every task has completed. The clock runs
/// from the first `create_tasks` request to the poll that sees the last task done, so it includes the
/// SDK's own work (building, signing and sending 100-task requests) and up to one poll interval.
struct SDKBench {
    let root: String
    let binary: String
    /// The interpreter of the venv that holds azure-batch 15.
    let python: String

    /// The script the interpreter runs: arguments endpoint, account, key, task count; prints one JSON
    /// object with the rate, or exits non-zero with the reason.
    static let script = #"""
        import json, sys, time
        from azure.batch import BatchClient, models
        from azure.core.credentials import AzureNamedKeyCredential

        endpoint, account, key, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
        client = BatchClient(endpoint, AzureNamedKeyCredential(account, key))

        def wait(condition, timeout=600, interval=0.05):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if condition():
                    return
                time.sleep(interval)
            sys.exit("timed out")

        client.create_pool(models.BatchPoolCreateOptions(
            id="sdkbench", vm_size="standard_d1_v2", target_dedicated_nodes=2, task_slots_per_node=2))
        wait(lambda: sum(1 for node in client.list_nodes("sdkbench") if node.state == models.BatchNodeState.IDLE) == 2)
        client.create_job(models.BatchJobCreateOptions(
            id="sdkbench", pool_info=models.BatchPoolInfo(pool_id="sdkbench"),
            job_preparation_task=models.BatchJobPreparationTask(command_line="/bin/true"),
            job_release_task=models.BatchJobReleaseTask(command_line="/bin/true")))
        tasks = [models.BatchTaskCreateOptions(id="t%05d" % index, command_line="/bin/true") for index in range(count)]
        start = time.monotonic()
        result = client.create_tasks("sdkbench", tasks)
        failed = [item.task_id for item in result.result_values if item.status != models.BatchTaskAddStatus.SUCCESS]
        if failed:
            sys.exit("create_tasks failed for %d tasks, first %s" % (len(failed), failed[0]))
        done = {}
        def finished():
            counts = client.get_job_task_counts("sdkbench").task_counts
            done["succeeded"], done["failed"] = counts.succeeded, counts.failed
            return counts.succeeded + counts.failed >= count
        wait(finished, interval=0.02)
        seconds = time.monotonic() - start
        if done["succeeded"] != count:
            sys.exit("%d of %d tasks succeeded" % (done["succeeded"], count))
        print(json.dumps({"tasksPerSecond": count / seconds, "seconds": seconds}))
        """#

    /// Whether the venv is there (`make sdk-venv`).
    var available: Bool { FileManager.default.isExecutableFile(atPath: python) }

    /// One run on a fresh daemon: tasks per second.
    func throughput(tasks: Int) throws -> Double {
        let directory = try emptyDirectory("sdk-throughput", under: root)
        let scriptPath = (directory as NSString).appendingPathComponent("sdk_throughput.py")
        try SDKBench.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        // The daemon's own folders go in a subfolder: the script lives beside them, not among them.
        let dataDirectory = (directory as NSString).appendingPathComponent("data")
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        chmod(dataDirectory, 0o755)
        let daemon = try Daemon(binary: binary, dataDirectory: dataDirectory, port: Daemon.freePort())
        defer {
            daemon.stop()
            discardScratch(directory)
        }
        let key = try String(contentsOfFile: (dataDirectory as NSString).appendingPathComponent("account.key"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [scriptPath, "http://127.0.0.1:\(daemon.port)", "bookend", key, String(tasks)]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read both pipes to the end before waiting, so a chatty SDK cannot block on a full pipe.
        let stderrData = Collector<UInt8>()
        let readerDone = DispatchSemaphore(value: 0)
        Thread {
            stderrData.add(Array(errors.fileHandleForReading.readDataToEndOfFile()))
            readerDone.signal()
        }.start()
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        readerDone.wait()
        guard process.terminationStatus == 0,
            let answer = (try? JSONSerialization.jsonObject(with: stdout)) as? [String: Any],
            let rate = answer["tasksPerSecond"] as? Double
        else {
            let message = String(decoding: (try? stderrData.result()) ?? [], as: UTF8.self).suffix(600)
            throw BenchError("SDK throughput failed (exit \(process.terminationStatus)): \(message)")
        }
        return rate
    }
}

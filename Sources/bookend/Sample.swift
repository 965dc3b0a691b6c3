import ArgumentParser
import Bookend
import Foundation

struct SampleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample", abstract: "Run a built-in sample end to end.", subcommands: [JobPrepReleaseSample.self])
}

/// The Azure Batch JobPrepRelease sample, on local nodes: a preparation task writes the node id to a
/// file in the node's shared folder, eight tasks append their ids, the release task deletes it.
struct JobPrepReleaseSample: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job-prep-release",
        abstract: "Run the JobPrepRelease sample: a pool of two local nodes, a job with preparation and release tasks, eight tasks.")

    @Option(name: .customLong("data-dir"), help: "The data directory (created if missing).")
    var dataDirectory: String = "var/sample"

    @Flag(help: "Keep the job after the sample ends (it is deleted by default).")
    var keepJob = false

    @Flag(help: "Keep the pool after the sample ends (it is deleted by default).")
    var keepPool = false

    /// As root, tasks run under accounts of their own that cannot pass a folder such as /root (a clone
    /// there holds var/sample). The sample should just work, so then its nodes live in a fresh folder
    /// under /var/tmp, and it says so. nil: `<data-dir>/nodes`, which the tasks can reach.
    func sampleNodesDirectory() throws -> String? {
        guard geteuid() == 0 else { return nil }
        let absolute = dataDirectory.hasPrefix("/")
            ? dataDirectory : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(dataDirectory)
        let standard = (absolute as NSString).standardizingPath
        let dataDirectoryPath = (standard as NSString).resolvingSymlinksInPath
        guard let blocking = Engine.unreachableFolder(nodesDirectory: (standard as NSString).appendingPathComponent("nodes")),
            blocking != dataDirectoryPath
        else { return nil }
        var template = Array("/var/tmp/bookend-sample-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CLIError("cannot create a node folder under /var/tmp: \(String(cString: strerror(errno)))")
        }
        let nodes = String(cString: made)
        chmod(nodes, 0o755)
        print("Node folders: \(nodes) (task accounts cannot pass \(blocking))")
        return nodes
    }

    func run() async throws {
        let poolID = "JobPrepReleaseSamplePool"
        let jobID = "JobPrepReleaseSampleJob"
        let sharedFile = "$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"
        let nodesDirectory: String?
        do {
            // A sample should just work from anywhere: make the folder and its parents.
            try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
            nodesDirectory = try sampleNodesDirectory()
        } catch {
            // Foundation's own text is an NSError dump (`Error Domain=NSCocoaErrorDomain Code=516 …`):
            // say what is wrong with the path instead, as `migrate` and `serve` do.
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: dataDirectory, isDirectory: &isFolder), !isFolder.boolValue {
                throw CLIError("\(dataDirectory): exists and is not a directory")
            }
            throw CLIError("\(dataDirectory): cannot create the data directory (\((error as NSError).localizedDescription))")
        }
        // The engine lives for this scope only: it is shut down however the sample ends.
        do {
            try await Engine.withEngine(dataDirectory: dataDirectory, configuration: EngineConfiguration(nodesDirectory: nodesDirectory)) { engine in
                try await runSample(engine, poolID: poolID, jobID: jobID, sharedFile: sharedFile)
            }
        } catch {
            throw CLIError("\(error)")
        }
        // The folder made under /var/tmp held only this run's nodes, which are gone with the pool.
        if let nodesDirectory, !keepPool { try? FileManager.default.removeItem(atPath: nodesDirectory) }
    }

    private func runSample(_ engine: Engine, poolID: String, jobID: String, sharedFile: String) async throws {
        if (try? await engine.pool(id: poolID)) == nil {
            print("Pool \(poolID) not found, creating...")
            try await engine.createPool(PoolSpec(id: poolID, vmSize: "small", targetDedicatedNodes: 2, taskSlotsPerNode: 1))
        }
        if (try? engine.job(id: jobID)) == nil {
            print("Job \(jobID) not found, creating...")
            try await engine.createJob(JobSpec(
                id: jobID, poolID: poolID,
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/sh -c 'echo \"$AZ_BATCH_NODE_ID tasks:\" > \"\(sharedFile)\"'"),
                jobReleaseTask: JobReleaseTask(commandLine: "/bin/sh -c 'rm \"\(sharedFile)\"'")))
        }
        let tasks = (1...8).map { index in
            TaskSpec(id: "task" + String(format: "%03d", index), commandLine: "/bin/sh -c 'echo \"  $AZ_BATCH_TASK_ID\" >> \"\(sharedFile)\"'")
        }
        print("Submitting tasks and awaiting completion...")
        for result in try await engine.addTasks(jobID: jobID, tasks) where result.status != "success" {
            print("  \(result.taskId): \(result.error?.description ?? result.status)")
        }
        do {
            // Throws at once if the tasks can never complete (e.g. preparation failed on both nodes).
            try await engine.waitForTasks(jobID: jobID, timeout: .seconds(600))
        } catch let blocked as JobBlockedError {
            // The outer handler shuts the engine down and prints this as the one error.
            throw CLIError("\(blocked)\nThe job and pool are kept for inspection: bookend sql --data-dir \(dataDirectory) 'SELECT * FROM job_blockage'")
        }
        print("All tasks completed.")
        print()
        for node in try await engine.nodes(poolID: poolID) where node.state == .idle {
            guard let data = try? await engine.readNodeFile(poolID: poolID, nodeID: node.id, path: "shared/job_prep_and_release.txt") else {
                continue
            }
            print("Contents of shared/job_prep_and_release.txt on \(node.id):")
            print("-------------------------------------------")
            print(String(decoding: data, as: UTF8.self))
        }
        try await engine.terminateJob(id: jobID)
        try await engine.waitForJob(id: jobID, state: .completed, timeout: .seconds(120))
        for status in try engine.prepReleaseStatus(jobID: jobID) {
            print()
            print("\(status.nodeId): ")
            print("  Prep task exit code:    \(status.jobPreparationTaskExecutionInfo.exitCode.map(String.init) ?? "")")
            if let release = status.jobReleaseTaskExecutionInfo {
                print("  Release task exit code: \(release.exitCode.map(String.init) ?? "")")
            }
        }
        print()
        if !keepJob {
            print("Deleting job \(jobID)...")
            try await engine.deleteJob(id: jobID)
            try await engine.waitForJobDeletion(id: jobID, timeout: .seconds(120))
        }
        if !keepPool {
            print("Deleting pool \(poolID)...")
            try await engine.deletePool(id: poolID)
        }
        print()
        print("Sample complete. History is in \(DataDirectory.databasePath(dataDirectory)).")
    }
}

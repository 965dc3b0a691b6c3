import Bookend
import Foundation
import Logging

/// Benchmarks that drive the engine in this process, as a program that embeds `import Bookend` would.
struct LibraryBenches {
    let root: String
    let stamp: String

    func freshDirectory(_ name: String) throws -> String { try emptyDirectory(name, under: root) }

    static func open(_ directory: String, synchronous: EngineConfiguration.SynchronousLevel = .full) async throws -> Engine {
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        return try await Engine.open(dataDirectory: directory, configuration: EngineConfiguration(synchronous: synchronous), logger: logger)
    }

    static func waitForIdleNodes(_ engine: Engine, pool: String, count: Int) async throws {
        try await engine.wait(timeout: .seconds(120)) { engine in
            try engine.nodes(poolID: pool).filter { $0.state == .idle }.count == count
        }
    }

    static func addTasks(_ engine: Engine, job: String, ids: Range<Int>, prefix: String, commandLine: String) async throws {
        var next = ids.lowerBound
        while next < ids.upperBound {
            let end = min(next + 100, ids.upperBound)
            let specs = (next..<end).map { TaskSpec(id: "\(prefix)\($0)", commandLine: commandLine) }
            for result in try await engine.addTasks(jobID: job, specs) where result.status != "success" {
                throw BenchError("adding \(result.taskId) failed: \(String(describing: result.error))")
            }
            next = end
        }
    }

    /// 1. Throughput: trivial tasks through a job with preparation and release on 2 nodes × 2 slots.
    /// The tasks are stored while the job is disabled, so the clock covers scheduling and running only.
    ///
    /// With `beside` > 0, that many `sleep` tasks of another job run on the same two nodes the whole
    /// time (each node has room for its half of them as well), and the measured job may run 4 tasks at
    /// once (`maxParallelTasks`), as on the plain pool: the same work, with a busy pool around it. What
    /// a pass costs must not grow with what else is running.
    func throughput(tasks: Int, synchronous: EngineConfiguration.SynchronousLevel, beside: Int = 0) async throws -> Double {
        let directory = try freshDirectory("throughput-\(synchronous.rawValue)\(beside > 0 ? "-beside-\(beside)" : "")")
        let engine = try await LibraryBenches.open(directory, synchronous: synchronous)
        try await engine.createPool(PoolSpec(id: "bench", targetDedicatedNodes: 2, taskSlotsPerNode: 2 + (beside + 1) / 2))
        try await LibraryBenches.waitForIdleNodes(engine, pool: "bench", count: 2)
        if beside > 0 {
            try await engine.createJob(JobSpec(id: "beside", poolID: "bench"))
            try await LibraryBenches.addTasks(engine, job: "beside", ids: 0..<beside, prefix: "s", commandLine: "sleep 600")
            try await engine.wait(timeout: .seconds(120)) { engine in try engine.taskCounts(jobID: "beside").taskCounts.running == beside }
        }
        var job = JobSpec(
            id: "throughput", poolID: "bench",
            jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"), jobReleaseTask: JobReleaseTask(commandLine: "/bin/true"))
        if beside > 0 { job.maxParallelTasks = 4 }
        try await engine.createJob(job)
        try await engine.disableJob(id: "throughput", disableTasks: "wait")
        try await engine.waitForJob(id: "throughput", state: .disabled, timeout: .seconds(60))
        try await LibraryBenches.addTasks(engine, job: "throughput", ids: 0..<tasks, prefix: "t", commandLine: "/bin/true")
        let seconds = try await elapsed {
            try await engine.enableJob(id: "throughput")
            try await engine.waitForTasks(jobID: "throughput", timeout: .seconds(600))
        }
        let counts = try engine.taskCounts(jobID: "throughput").taskCounts
        guard counts.succeeded == tasks else { throw BenchError("throughput: \(counts.succeeded) of \(tasks) tasks succeeded") }
        try await engine.terminateJob(id: "throughput")
        try await engine.waitForJob(id: "throughput", state: .completed, timeout: .seconds(60))
        let released = try engine.prepReleaseStatus(jobID: "throughput").filter { $0.jobReleaseTaskExecutionInfo?.exitCode == 0 }.count
        guard released == 2 else { throw BenchError("throughput: release ran on \(released) of 2 nodes") }
        if beside > 0 {
            try await engine.terminateJob(id: "beside")
            try await engine.wait(timeout: .seconds(60)) { engine in try engine.taskCounts(jobID: "beside").taskCounts.running == 0 }
        }
        await engine.shutdown()
        discardScratch(directory)
        return Double(tasks) / seconds
    }

    /// 2. Latency: from just before `addTask` is called to the task's process running (the clock
    /// reading `bench-stamp` prints), one task at a time on an idle node. Milliseconds.
    func latency(samples: Int) async throws -> [Double] {
        let directory = try freshDirectory("latency")
        let engine = try await LibraryBenches.open(directory)
        try await engine.createPool(PoolSpec(id: "latency", targetDedicatedNodes: 1, taskSlotsPerNode: 1))
        try await LibraryBenches.waitForIdleNodes(engine, pool: "latency", count: 1)
        try await engine.createJob(JobSpec(id: "latency", poolID: "latency"))
        var events = await engine.events().makeAsyncIterator()
        var latencies: [Double] = []
        for i in 0..<samples {
            let id = "l\(i)"
            let submitted = wallNanoseconds()
            try await engine.addTask(jobID: "latency", TaskSpec(id: id, commandLine: stamp))
            while let event = await events.next() {
                if event.kind == "task.completed", event.taskId == id { break }
            }
            let started = try await LibraryBenches.stampValue(engine.readTaskFile(jobID: "latency", taskID: id, path: "stdout.txt"))
            latencies.append(Double(started - submitted) / 1e6)
            // Let the node report idle again before the next submission.
            try await LibraryBenches.waitForIdleNodes(engine, pool: "latency", count: 1)
        }
        await engine.shutdown()
        discardScratch(directory)
        return latencies
    }

    /// 2b. From the preparation task's process to the first task's process on the same node.
    func preparationGap(jobs: Int) async throws -> [Double] {
        let directory = try freshDirectory("prepgap")
        let engine = try await LibraryBenches.open(directory)
        try await engine.createPool(PoolSpec(id: "prepgap", targetDedicatedNodes: 1, taskSlotsPerNode: 1))
        try await LibraryBenches.waitForIdleNodes(engine, pool: "prepgap", count: 1)
        let node = try await engine.nodes(poolID: "prepgap")[0].id
        var events = await engine.events().makeAsyncIterator()
        var gaps: [Double] = []
        for i in 0..<jobs {
            let job = "gap\(i)"
            try await engine.createJob(JobSpec(id: job, poolID: "prepgap", jobPreparationTask: JobPreparationTask(commandLine: stamp)))
            try await engine.addTask(jobID: job, TaskSpec(id: "first", commandLine: stamp))
            while let event = await events.next() {
                if event.kind == "task.completed", event.jobId == job { break }
            }
            let prep = try await LibraryBenches.stampValue(
                engine.readNodeFile(poolID: "prepgap", nodeID: node, path: "workitems/\(job)/job-1/jobpreparation/stdout.txt"))
            let first = try await LibraryBenches.stampValue(engine.readTaskFile(jobID: job, taskID: "first", path: "stdout.txt"))
            gaps.append(Double(first - prep) / 1e6)
            try await engine.terminateJob(id: job)
            try await engine.waitForJob(id: job, state: .completed, timeout: .seconds(60))
        }
        await engine.shutdown()
        discardScratch(directory)
        return gaps
    }

    /// 3b. Ingest through the library: `addTasks` with 100 tasks per call into a job whose pool has no
    /// nodes, from `callers` concurrent callers (each its own share of the calls, as the REST figure's
    /// connections), so that with more than one the engine's group commit shares each commit.
    func ingest(tasks: Int, callers: Int = 1) async throws -> Double {
        let directory = try freshDirectory("ingest-library-\(callers)")
        let engine = try await LibraryBenches.open(directory)
        try await engine.createPool(PoolSpec(id: "ingest", targetDedicatedNodes: 0))
        try await engine.createJob(JobSpec(id: "ingest", poolID: "ingest"))
        let calls = (tasks + 99) / 100
        let seconds = try await elapsed {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<callers {
                    group.addTask {
                        for call in stride(from: caller, to: calls, by: callers) {
                            try await LibraryBenches.addTasks(engine, job: "ingest", ids: (call * 100)..<min(call * 100 + 100, tasks),
                                prefix: "task-", commandLine: "/bin/true")
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let counts = try engine.taskCounts(jobID: "ingest").taskCounts
        guard counts.active == tasks else { throw BenchError("ingest: \(counts.active) of \(tasks) tasks stored") }
        await engine.shutdown()
        discardScratch(directory)
        return Double(tasks) / seconds
    }

    /// 7. History: consecutive jobs with preparation and release through one engine, each deleted
    /// once it finished, so whatever a finished job leaves behind (events, executions, folders,
    /// index entries) accumulates. Returns each job's tasks/s, first to last.
    func history(jobs: Int, tasksPerJob: Int) async throws -> [Double] {
        let directory = try freshDirectory("history")
        let engine = try await LibraryBenches.open(directory)
        try await engine.createPool(PoolSpec(id: "history", targetDedicatedNodes: 2, taskSlotsPerNode: 2))
        try await LibraryBenches.waitForIdleNodes(engine, pool: "history", count: 2)
        var rates: [Double] = []
        for i in 0..<jobs {
            let job = "history\(i)"
            try await engine.createJob(JobSpec(
                id: job, poolID: "history",
                jobPreparationTask: JobPreparationTask(commandLine: "/bin/true"), jobReleaseTask: JobReleaseTask(commandLine: "/bin/true")))
            try await engine.disableJob(id: job, disableTasks: "wait")
            try await engine.waitForJob(id: job, state: .disabled, timeout: .seconds(60))
            try await LibraryBenches.addTasks(engine, job: job, ids: 0..<tasksPerJob, prefix: "t", commandLine: "/bin/true")
            let seconds = try await elapsed {
                try await engine.enableJob(id: job)
                try await engine.waitForTasks(jobID: job, timeout: .seconds(1800))
            }
            let counts = try engine.taskCounts(jobID: job).taskCounts
            guard counts.succeeded == tasksPerJob else { throw BenchError("history: \(counts.succeeded) of \(tasksPerJob) tasks of \(job) succeeded") }
            rates.append(Double(tasksPerJob) / seconds)
            print("   job \(i + 1) of \(jobs): \(Int(rates.last!.rounded())) tasks/s")
            try await engine.terminateJob(id: job)
            try await engine.waitForJob(id: job, state: .completed, timeout: .seconds(120))
            try await engine.deleteJob(id: job)
            try await engine.waitForJobDeletion(id: job, timeout: .seconds(600))
        }
        await engine.shutdown()
        discardScratch(directory)
        return rates
    }

    static func stampValue(_ data: Data) throws -> Int64 {
        guard let value = Int64(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw BenchError("bench-stamp wrote no clock reading")
        }
        return value
    }
}

import ArgumentParser
import Bookend
import Foundation

/// Hidden: drives a fixed workload to its end, for the crash tests. Every step is idempotent and
/// decided from stored state (the database, side-effect files, one marker per created job), so the
/// process can be killed at any instant and simply started again: it continues, never resubmits.
struct WorkloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload", abstract: "Crash-test workloads (for tests).", shouldDisplay: false,
        subcommands: [WorkloadRun.self])
}

struct WorkloadRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Submit a workload (if not yet submitted) and drive it until every job has ended; exit 0 then.")

    @OptionGroup var data: DataDirectoryOptions
    var dataDirectory: String { data.dataDirectory }

    @Option(help: "mixed | random | reuse")
    var spec: String = "mixed"

    @Option(help: "Seed for the random workload's shape.")
    var seed: UInt64 = 1

    @Option(help: "Tasks in the random workload.")
    var tasks: Int = 500

    @Option(help: "Give up after this many seconds.")
    var timeout: Int = 300

    @Option(help: "On SIGTERM/SIGINT, wait up to this many seconds for running work (default: leave it running for the next start).")
    var drain: Int?

    func run() async throws {
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        chmod(dataDirectory, 0o755)
        let effects = (dataDirectory as NSString).appendingPathComponent("effects")
        let markers = (dataDirectory as NSString).appendingPathComponent("workload")
        for folder in [effects, markers] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        // Tasks run as an unprivileged account when this runs as root.
        chmod(effects, 0o777)
        // Graceful shutdown: SIGTERM or SIGINT stops dispatching and leaves running executions to the
        // next start (or drains them with --drain); the process then exits with status 3.
        let stop = StopSignal()
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { stop.raise() }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }
        let engine = try await Engine.open(
            dataDirectory: dataDirectory,
            configuration: EngineConfiguration(
                tickInterval: .milliseconds(20), killGracePeriod: .seconds(1), drainOnShutdown: drain.map { .seconds($0) }))
        var driver = WorkloadDriver(engine: engine, effects: effects, markers: markers)
        let plan: [PlannedJob]
        switch spec {
        case "mixed", "reuse": plan = []
        case "random": plan = WorkloadDriver.randomPlan(tasks: tasks, seed: seed, effects: effects)
        default: throw CLIError("unknown workload \(spec)")
        }
        let deadline = ContinuousClock.now + .seconds(timeout)
        do {
            while true {
                if stop.raised {
                    await engine.shutdown()
                    print("stopped by signal; running work \(drain == nil ? "left running for the next start" : "drained")")
                    throw ExitCode(3)
                }
                let done = switch spec {
                case "mixed": try await driver.mixedStep()
                case "reuse": try await driver.reuseStep()
                default: try await driver.plannedStep(plan, pool: "crashR", nodes: 2, slots: 2)
                }
                if done { break }
                guard ContinuousClock.now < deadline else { throw CLIError("workload did not finish in \(timeout) s") }
                try await Task.sleep(for: .milliseconds(25))
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            await engine.shutdown()
            throw CLIError("\(error)")
        }
        await engine.shutdown()
        print("workload complete")
    }
}

/// Set from a signal handler's queue, read by the driving loop.
final class StopSignal: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var value = false
    func raise() { lock.lock(); value = true; lock.unlock() }
    var raised: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// A job of the workload: its spec, its tasks, and when the driver ends it.
struct PlannedJob {
    enum Ending { case terminateWhenTasksComplete, terminateWhenRunning(String), deleteWhenRunning(String), deleteWhenTasksComplete }
    var spec: JobSpec
    var tasks: [TaskSpec]
    var ending: Ending
}

struct WorkloadDriver {
    let engine: Engine
    let effects: String
    let markers: String
    var submitted: Set<String> = []

    /// `sh -c '<script>'`, every command line carries the side-effect folder (unique per data dir),
    /// so tests can find leftover processes of the workload in /proc/*/cmdline.
    static func sh(_ script: String) -> String {
        "/bin/sh -c '" + script.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    func append(_ name: String) -> String { "echo \"$AZ_BATCH_NODE_ID\" >> \"\(effects)/\(name)\"" }

    func lines(_ name: String) -> Int {
        guard let text = try? String(contentsOfFile: (effects as NSString).appendingPathComponent(name), encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").count
    }

    /// Creates the pool when missing; true once every node is idle or running.
    func ensurePool(_ id: String, nodes: Int, slots: Int, startTask: StartTask? = nil) async throws -> Bool {
        if (try? await engine.pool(id: id)) == nil {
            try await engine.createPool(PoolSpec(id: id, targetDedicatedNodes: nodes, taskSlotsPerNode: slots, startTask: startTask))
        }
        let states = try await engine.nodes(poolID: id).map(\.state)
        return states.count == nodes && states.allSatisfy { [.idle, .running].contains($0) }
    }

    /// The job's state, creating it (once: a marker remembers it was created) and its tasks when missing;
    /// nil when the job was created and is gone (deleted).
    mutating func ensureJob(_ planned: PlannedJob) async throws -> Job? {
        let id = planned.spec.id
        let marker = (markers as NSString).appendingPathComponent(id)
        var job = try? engine.job(id: id)
        if job == nil {
            guard !FileManager.default.fileExists(atPath: marker) else { return nil }
            job = try await engine.createJob(planned.spec)
        }
        // Without its marker, a job deleted later would be created again by the next run.
        if !FileManager.default.fileExists(atPath: marker), !FileManager.default.createFile(atPath: marker, contents: Data()) {
            throw CLIError("cannot create the workload marker \(marker): \(String(cString: strerror(errno)))")
        }
        if !submitted.contains(id), job?.state == .active {
            let existing = Set(try await engine.tasks(jobID: id).map(\.id))
            let missing = planned.tasks.filter { !existing.contains($0.id) }
            var start = 0
            while start < missing.count {
                let chunk = Array(missing[start..<min(start + 100, missing.count)])
                for result in try await engine.addTasks(jobID: id, chunk) where result.status != "success" && result.error?.code != "TaskExists" {
                    throw CLIError("adding \(result.taskId): \(result.error?.description ?? result.status)")
                }
                start += 100
            }
            submitted.insert(id)
        }
        return job
    }

    /// One pass over the planned jobs: submit what is missing, end jobs whose turn has come.
    /// True when every job has ended (completed, or deleted).
    mutating func drive(_ plan: [PlannedJob]) async throws -> Bool {
        var done = true
        for planned in plan {
            guard let job = try await ensureJob(planned) else { continue }
            if job.state == .completed { continue }
            done = false
            guard job.state == .active, submitted.contains(job.id) else { continue }
            let tasks = try await engine.tasks(jobID: job.id)
            let completed = Set(tasks.filter { $0.state == .completed }.map(\.id))
            switch planned.ending {
            case .terminateWhenTasksComplete:
                if completed.count == planned.tasks.count { try await engine.terminateJob(id: job.id) }
            case .terminateWhenRunning(let long):
                if completed.count == planned.tasks.count - 1, lines(long) > 0 { try await engine.terminateJob(id: job.id) }
            case .deleteWhenRunning(let long):
                if completed.count == planned.tasks.count - 1, lines(long) > 0 { try await engine.deleteJob(id: job.id) }
            case .deleteWhenTasksComplete:
                if completed.count == planned.tasks.count { try await engine.deleteJob(id: job.id) }
            }
        }
        return done
    }

    /// Two pools; A: preparation, release, retries, a timeout, short retention; B (nodes with a start
    /// task): preparation that fails on one node; C: terminated while a task runs; D: deleted while a task runs;
    /// E: submitted once all the others have ended, so its executions are the first after D's were
    /// deleted (the numbers a reused id would have handed out again).
    mutating func mixedStep() async throws -> Bool {
        let poolA = try await ensurePool("crashA", nodes: 2, slots: 2)
        // Pool B's nodes run a start task once per boot (side effect start.<node>).
        let poolB = try await ensurePool("crashB", nodes: 2, slots: 1,
            startTask: StartTask(commandLine: Self.sh(append("start.$AZ_BATCH_NODE_ID")), waitForSuccess: true))
        guard poolA, poolB else { return false }
        let failing = try await engine.nodes(poolID: "crashB").map(\.id).sorted().first ?? ""
        let plan = mixedPlan(failingNode: failing)
        guard try await drive(plan) else { return false }
        let e = PlannedJob(spec: JobSpec(id: "E", poolID: "crashA"), tasks: [
            TaskSpec(id: "e1", commandLine: Self.sh(append("E.e1") + "; exit 4")),
            TaskSpec(id: "e2", commandLine: Self.sh(append("E.e2"))),
        ], ending: .terminateWhenTasksComplete)
        guard try await drive([e]) else { return false }
        // Retention (PT1S) of job A's task folders must have been honoured.
        for task in plan[0].tasks {
            if let directory = try? await engine.taskDirectory(jobID: "A", taskID: task.id), FileManager.default.fileExists(atPath: directory) {
                return false
            }
        }
        return true
    }

    func mixedPlan(failingNode: String) -> [PlannedJob] {
        let retention = TaskConstraints(retentionTime: "PT1S")
        let a = JobSpec(
            id: "A", poolID: "crashA",
            jobPreparationTask: JobPreparationTask(commandLine: Self.sh(append("A.prep.$AZ_BATCH_NODE_ID"))),
            jobReleaseTask: JobReleaseTask(commandLine: Self.sh(append("A.release.$AZ_BATCH_NODE_ID") + "; sleep 0.3")))
        var aTasks = (1...6).map { TaskSpec(id: "ok\($0)", commandLine: Self.sh(append("A.ok\($0)")), constraints: retention) }
        aTasks.append(TaskSpec(id: "retry", commandLine: Self.sh(append("A.retry") + "; exit 3"),
            constraints: TaskConstraints(retentionTime: "PT1S", maxTaskRetryCount: 2)))
        aTasks.append(TaskSpec(id: "flaky", commandLine: Self.sh(append("A.flaky") + "; [ $(wc -l < \"\(effects)/A.flaky\") -ge 2 ]"),
            constraints: TaskConstraints(retentionTime: "PT1S", maxTaskRetryCount: 3)))
        aTasks.append(TaskSpec(id: "timeout", commandLine: Self.sh(append("A.timeout") + "; sleep 30; :"),
            constraints: TaskConstraints(maxWallClockTime: "PT3S", retentionTime: "PT1S")))
        let b = JobSpec(
            id: "B", poolID: "crashB",
            jobPreparationTask: JobPreparationTask(commandLine: Self.sh(append("B.prep.$AZ_BATCH_NODE_ID") + "; [ \"$AZ_BATCH_NODE_ID\" != \"\(failingNode)\" ] || exit 7")),
            jobReleaseTask: JobReleaseTask(commandLine: Self.sh(append("B.release.$AZ_BATCH_NODE_ID"))))
        let bTasks = (1...4).map { TaskSpec(id: "b\($0)", commandLine: Self.sh(append("B.b\($0)"))) }
        let c = JobSpec(id: "C", poolID: "crashA")
        var cTasks = (1...3).map { TaskSpec(id: "c\($0)", commandLine: Self.sh(append("C.c\($0)") + "; exit \($0)")) }
        cTasks.append(TaskSpec(id: "long", commandLine: Self.sh(append("C.long") + "; sleep 60; :")))
        let d = JobSpec(
            id: "D", poolID: "crashA",
            jobPreparationTask: JobPreparationTask(commandLine: Self.sh(append("D.prep.$AZ_BATCH_NODE_ID"))),
            jobReleaseTask: JobReleaseTask(commandLine: Self.sh(append("D.release.$AZ_BATCH_NODE_ID"))))
        let dTasks = [TaskSpec(id: "d1", commandLine: Self.sh(append("D.d1"))), TaskSpec(id: "long", commandLine: Self.sh(append("D.long") + "; sleep 60; :"))]
        return [
            PlannedJob(spec: a, tasks: aTasks, ending: .terminateWhenTasksComplete),
            PlannedJob(spec: b, tasks: bTasks, ending: .terminateWhenTasksComplete),
            PlannedJob(spec: c, tasks: cTasks, ending: .terminateWhenRunning("C.long")),
            PlannedJob(spec: d, tasks: dTasks, ending: .deleteWhenRunning("D.long")),
        ]
    }

    /// One node, one slot, no start task: job R1's task exits 7 and R1 is deleted; then job R2's task
    /// exits 3. R2's execution is the first after R1's were deleted, so with reused ids it would get
    /// R1's number and status folder; a crash right after its dispatch (`after-commit:task.running#2`)
    /// then made the restart read R1's exit 7 as R2's.
    mutating func reuseStep() async throws -> Bool {
        guard try await ensurePool("reuse", nodes: 1, slots: 1) else { return false }
        let first = PlannedJob(spec: JobSpec(id: "R1", poolID: "reuse"),
            tasks: [TaskSpec(id: "t", commandLine: Self.sh(append("R1.t") + "; exit 7"))], ending: .deleteWhenTasksComplete)
        guard try await drive([first]) else { return false }
        let second = PlannedJob(spec: JobSpec(id: "R2", poolID: "reuse"),
            tasks: [TaskSpec(id: "t", commandLine: Self.sh(append("R2.t") + "; sleep 1; exit 3"))], ending: .terminateWhenTasksComplete)
        return try await drive([second])
    }

    /// `tasks` tasks over five jobs with preparation and release on one pool. Task i exits 0, except
    /// i % 10 == 3 (fails its first run, then succeeds: 2 runs) and i % 10 == 7 (exits 5 twice: 2 runs);
    /// the others sleep 0.1 s. On 2 nodes x 2 slots that is at least 12 s of running time, so the
    /// workload outlasts 50 kills at random moments (30-330 ms apart) whatever the machine speed.
    static func randomPlan(tasks: Int, seed: UInt64, effects: String) -> [PlannedJob] {
        let jobs = 5
        return (0..<jobs).map { j in
            let id = "R\(j)"
            let append = { (name: String) in "echo \"$AZ_BATCH_NODE_ID\" >> \"\(effects)/\(name)\"" }
            let spec = JobSpec(
                id: id, poolID: "crashR",
                jobPreparationTask: JobPreparationTask(commandLine: sh(append("\(id).prep.$AZ_BATCH_NODE_ID"))),
                jobReleaseTask: JobReleaseTask(commandLine: sh(append("\(id).release.$AZ_BATCH_NODE_ID"))),
                priority: Int((seed &+ UInt64(j) &* 7) % 3))
            let specs = stride(from: j, to: tasks, by: jobs).map { i -> TaskSpec in
                let name = "\(id).t\(i)"
                switch i % 10 {
                case 3:
                    return TaskSpec(id: "t\(i)", commandLine: sh(append(name) + "; [ $(wc -l < \"\(effects)/\(name)\") -ge 2 ]"),
                        constraints: TaskConstraints(maxTaskRetryCount: 1))
                case 7:
                    return TaskSpec(id: "t\(i)", commandLine: sh(append(name) + "; exit 5"), constraints: TaskConstraints(maxTaskRetryCount: 1))
                default:
                    return TaskSpec(id: "t\(i)", commandLine: sh(append(name) + "; sleep 0.1"))
                }
            }
            return PlannedJob(spec: spec, tasks: specs, ending: .terminateWhenTasksComplete)
        }
    }

    mutating func plannedStep(_ plan: [PlannedJob], pool: String, nodes: Int, slots: Int) async throws -> Bool {
        guard try await ensurePool(pool, nodes: nodes, slots: slots) else { return false }
        return try await drive(plan)
    }
}

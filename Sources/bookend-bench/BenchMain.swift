import Bookend
import Foundation

/// `bookend-bench`: measures Bookend on this machine next to baselines measured in the same run, and
/// prints one table (also written as JSON). `make bench` builds it in release mode and runs it.
@main
struct BenchMain {
    struct Options {
        var root = "var/bench"
        var json: String?
        var quick = false
        var only: Set<String> = []
        var keep = false
        /// The Python of the venv `make sdk-venv` makes (azure-batch 15), for the SDK throughput.
        var sdkPython = ".venv-sdk/bin/python"
        /// Stored-task counts of the scale section, smallest first (its first is the baseline).
        var scaleSizes: [Int]?
    }

    static func parse() throws -> Options {
        var options = Options()
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--dir": options.root = try value(&arguments, argument)
            case "--json": options.json = try value(&arguments, argument)
            case "--quick": options.quick = true
            case "--keep": options.keep = true
            case "--sdk-python": options.sdkPython = try value(&arguments, argument)
            case "--scale-sizes":
                let text = try value(&arguments, argument)
                let sizes = text.split(separator: ",").compactMap { Int($0) }
                guard !sizes.isEmpty, sizes.count == text.split(separator: ",").count, sizes.allSatisfy({ $0 >= 2 }), sizes == sizes.sorted() else {
                    throw BenchError("--scale-sizes wants increasing task counts of at least 2, such as 10000,1000000,10000000; got \(text)")
                }
                options.scaleSizes = sizes
            case "--only": options.only = Set(try value(&arguments, argument).split(separator: ",").map(String.init))
            case "-h", "--help":
                print("""
                    usage: bookend-bench [--dir DIR] [--json FILE] [--quick] [--keep] [--only SECTIONS] [--sdk-python PYTHON]
                      --dir DIR        scratch data directories (default var/bench; removed afterwards unless --keep)
                      --json FILE      also write the figures as JSON (default DIR/results.json)
                      --quick          small sizes, to check that every benchmark runs
                      --only SECTIONS  comma-separated: throughput,latency,ingest,scale,load,recovery,history
                      --scale-sizes N,…  stored-task counts of the scale section (default 10000,100000,1000000;
                                       with --quick 1000,10000); 10000000 needs about 10 GB of disk
                      --sdk-python PY  the Python with azure-batch 15 for the SDK throughput (default .venv-sdk/bin/python,
                                       made by make sdk-venv); that figure is skipped, and says so, when it is missing
                    """)
                exit(0)
            default: throw BenchError("unknown argument \(argument); see --help")
            }
        }
        return options
    }

    static func value(_ arguments: inout ArraySlice<String>, _ name: String) throws -> String {
        guard let value = arguments.popFirst() else { throw BenchError("\(name) needs a value") }
        return value
    }

    static func main() async {
        do {
            try await run(try parse())
        } catch {
            FileHandle.standardError.write(Data("bookend-bench: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ options: Options) async throws {
        let binaries = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let bookend = (binaries as NSString).appendingPathComponent("bookend")
        let builtStamp = (binaries as NSString).appendingPathComponent("bench-stamp")
        for program in [bookend, builtStamp] where !FileManager.default.isExecutableFile(atPath: program) {
            throw BenchError("\(program) is missing: build the bookend and bench-stamp products first (make bench does)")
        }
        let resultsRoot = ((options.root.hasPrefix("/") ? options.root : FileManager.default.currentDirectoryPath + "/" + options.root) as NSString).standardizingPath
        try FileManager.default.createDirectory(atPath: resultsRoot, withIntermediateDirectories: true)
        // Tasks run as unprivileged accounts when this runs as root; their folders live under here.
        chmod(resultsRoot, 0o755)
        let root = try scratchRoot(resultsRoot)
        // Always: --keep is about the scale data directory, not what the other sections put aside.
        defer { removeDiscardedScratch(under: root) }
        let stamp = try reachableStamp(builtStamp, scratch: root)
        let report = Report()
        let q = options.quick
        report.environment = [
            "cores": String(ProcessInfo.processInfo.activeProcessorCount),
            "memoryGiB": String(ProcessInfo.processInfo.physicalMemory >> 30),
            "kernel": ProcessInfo.processInfo.operatingSystemVersionString,
            "date": ISO8601DateFormatter().string(from: Date()),
            "quick": String(q),
        ]
        func wants(_ section: String) -> Bool { options.only.isEmpty || options.only.contains(section) }
        let library = LibraryBenches(root: root, stamp: stamp)
        let daemon = DaemonBenches(root: root, binary: bookend)

        if wants("throughput") {
            // Median of 3 runs each (issue 12), every run next to the same raw-spawn baseline.
            let tasks = q ? 500 : 4_000
            let sdkTasks = q ? 500 : 2_000
            let runs = 3
            print("1. throughput: \(tasks) × /bin/true (\(sdkTasks) through the SDK), job with prep and release, 2 nodes × 2 slots, median of \(runs)")
            let raw = median(try (0..<runs).map { _ in try Baselines.rawSpawn(count: tasks, inFlight: 4) })
            report.add(Figure(section: "throughput", name: "raw posix_spawn, 4 in flight (Swift loop, median of \(runs))", value: raw, unit: "/s", note: "baseline"))
            let durable = try Baselines.rawSpawn(count: tasks, inFlight: 4, durable: root + "/raw-durable.db")
            report.add(Figure(section: "throughput", name: "raw spawn + 2 FULL-sync transactions per process", value: durable, unit: "/s",
                baseline: raw, baselineName: "raw spawn"))
            // Not a target: the ceiling of any runner with one supervising process per command, which
            // Bookend is today (docs/performance.md, "What bounds each figure").
            let rawC = median(try (0..<runs).map { _ in try Baselines.cSpawnLoop(stamp: stamp, count: tasks, inFlight: 4) })
            report.add(Figure(section: "throughput", name: "raw posix_spawn, 4 in flight (C loop, median of \(runs))", value: rawC, unit: "/s",
                baseline: raw, baselineName: "raw spawn"))
            let shimmed = median(try (0..<runs).map { _ in
                try Baselines.cSpawnLoop(stamp: stamp, count: tasks, inFlight: 4, statusRoot: root + "/shim-status")
            })
            report.add(Figure(section: "throughput", name: "the same through a forked shim per process (pid and exit files, recycled; C loop)", value: shimmed,
                unit: "/s", baseline: rawC, baselineName: "raw posix_spawn (C loop)"))
            // Each plain run is followed by the same job beside 200 long tasks of another on the same
            // nodes: the two medians then come from the same minutes of this machine, whose speed
            // drifts by more than the effect (one run beside them gave 0.76 to 1.09 of the plain median
            // in one sitting).
            let beside = q ? 40 : 200
            var fullRuns: [Double] = []
            var besideRuns: [Double] = []
            for _ in 0..<runs {
                fullRuns.append(try await library.throughput(tasks: tasks, synchronous: .full))
                besideRuns.append(try await library.throughput(tasks: tasks, synchronous: .full, beside: beside))
            }
            report.add(Figure(section: "throughput", name: "library tasks/s (synchronous=FULL, default), median of \(runs)", value: median(fullRuns), unit: "/s",
                baseline: raw, baselineName: "raw spawn", target: "≥ 0.50 of raw",
                note: "runs: " + fullRuns.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
            report.add(Figure(section: "throughput", name: "library tasks/s (FULL) beside \(beside) running sleep tasks, median of \(runs)",
                value: median(besideRuns), unit: "/s", baseline: median(fullRuns), baselineName: "FULL without them", target: "≥ 0.90 (flat)",
                note: "runs: " + besideRuns.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
            let normal = try await library.throughput(tasks: tasks, synchronous: .normal)
            report.add(Figure(section: "throughput", name: "library tasks/s (synchronous=NORMAL), one run", value: normal, unit: "/s",
                baseline: raw, baselineName: "raw spawn"))
            let sdk = SDKBench(root: root, binary: bookend, python: options.sdkPython)
            if sdk.available {
                let sdkRaw = median(try (0..<runs).map { _ in try Baselines.rawSpawn(count: sdkTasks, inFlight: 4) })
                var sdkRuns: [Double] = []
                for _ in 0..<runs { sdkRuns.append(try sdk.throughput(tasks: sdkTasks)) }
                report.add(Figure(section: "throughput", name: "daemon + Python SDK create_tasks, \(sdkTasks) tasks, median of \(runs)", value: median(sdkRuns),
                    unit: "/s", baseline: sdkRaw, baselineName: "raw spawn (\(sdkTasks))", target: "≥ 0.50 of raw",
                    note: "runs: " + sdkRuns.map { String(format: "%.0f", $0) }.joined(separator: ", ")))
            } else {
                print("  daemon + Python SDK: skipped, \(options.sdkPython) is missing (make sdk-venv)")
                report.add(Figure(section: "throughput", name: "daemon + Python SDK create_tasks: skipped (no \(options.sdkPython))", value: .nan, unit: "/s",
                    target: "≥ 0.50 of raw"))
            }
        }
        if wants("latency") {
            let samples = q ? 100 : 1_000
            print("2. latency: submit → process start, \(samples) tasks one at a time on an idle node")
            let floor = try Baselines.spawnLatency(stamp: stamp, samples: samples)
            let durableFloor = try Baselines.spawnLatency(stamp: stamp, samples: samples, durable: root + "/latency-durable.db")
            let latencies = try await library.latency(samples: samples)
            report.add(Figure(section: "latency", name: "submit → start p50", value: median(latencies), unit: "ms",
                baseline: median(floor), baselineName: "posix_spawn → start p50", target: "≤ 1.5× floor"))
            report.add(Figure(section: "latency", name: "submit → start p99", value: quantile(latencies, 0.99), unit: "ms",
                baseline: quantile(floor, 0.99), baselineName: "posix_spawn → start p99", target: "≤ 2.5× floor"))
            // Not a target: what bounds the two above on this file system (docs/performance.md).
            report.add(Figure(section: "latency", name: "FULL-sync commit, then posix_spawn → start p50", value: median(durableFloor), unit: "ms",
                baseline: median(floor), baselineName: "posix_spawn → start p50"))
            report.add(Figure(section: "latency", name: "submit → start p50 against the commit + spawn floor", value: median(latencies), unit: "ms",
                baseline: median(durableFloor), baselineName: "FULL-sync commit, then posix_spawn → start p50"))
            let gaps = try await library.preparationGap(jobs: q ? 20 : 100)
            report.add(Figure(section: "latency", name: "prep start → first task start p50", value: median(gaps), unit: "ms",
                baseline: median(floor), baselineName: "posix_spawn → start p50", target: "≤ 2× floor"))
            report.add(Figure(section: "latency", name: "prep start → first task start p99", value: quantile(gaps, 0.99), unit: "ms"))
            let chain = try Baselines.chainLatency(stamp: stamp, samples: q ? 20 : 100, database: root + "/latency-chain.db")
            report.add(Figure(section: "latency", name: "process, its exit committed, next process → start p50", value: median(chain), unit: "ms",
                baseline: median(floor), baselineName: "posix_spawn → start p50"))
            report.add(Figure(section: "latency", name: "prep start → first task start p50 against that chain", value: median(gaps), unit: "ms",
                baseline: median(chain), baselineName: "process, its exit committed, next process → start p50"))
        }
        if wants("ingest") {
            let tasks = q ? 10_000 : 100_000
            print("3. ingest: \(tasks) tasks, 100 per call")
            let floor = try Baselines.rawInsert(count: tasks, path: root + "/raw-insert.db")
            report.add(Figure(section: "ingest", name: "raw INSERT, 100 rows per FULL-sync transaction", value: floor, unit: "/s", note: "baseline"))
            let viaLibrary = try await library.ingest(tasks: tasks)
            report.add(Figure(section: "ingest", name: "library addTasks", value: viaLibrary, unit: "tasks/s", baseline: floor, baselineName: "raw INSERT",
                target: "≥ 40,000/s"))
            // The REST figure's conditions (4 connections) through the library: 4 concurrent callers.
            let viaLibrary4 = try await library.ingest(tasks: tasks, callers: 4)
            report.add(Figure(section: "ingest", name: "library addTasks, 4 callers", value: viaLibrary4, unit: "tasks/s", baseline: floor,
                baselineName: "raw INSERT", target: "≥ 40,000/s"))
            for clients in [1, 4] {
                let viaREST = try daemon.ingest(tasks: tasks, clients: clients)
                report.add(Figure(section: "ingest", name: "REST addtaskcollection, \(clients) client\(clients == 1 ? "" : "s")", value: viaREST, unit: "tasks/s",
                    baseline: floor, baselineName: "raw INSERT", target: "≥ 20,000/s"))
            }
        }
        let scaleDirectory = root + "/scale"
        let sizes = options.scaleSizes ?? (q ? [1_000, 10_000] : [10_000, 100_000, 1_000_000])
        var scaleReady = false
        // Seconds for `bookend serve` to answer on an empty data directory: the baseline of every start time.
        var coldStart = Double.nan
        if wants("scale") || wants("load") || wants("recovery") {
            print("4. scale: \(sizes.map(String.init).joined(separator: ", ")) tasks stored")
            discardScratch(scaleDirectory)
            coldStart = try daemon.coldStart()
            let points = try await daemon.scale(sizes: sizes, directory: scaleDirectory)
            scaleReady = true
            let first = points[0]
            report.add(Figure(section: "scale", name: "daemon start on an empty data dir", value: coldStart * 1000, unit: "ms", note: "baseline"))
            for point in points {
                let label = point.tasks >= 1_000_000 ? "\(point.tasks / 1_000_000)M" : "\(point.tasks / 1_000)k"
                let isFirst = point.tasks == first.tasks
                report.add(Figure(section: "scale", name: "\(label): daemon RSS", value: Double(point.rssBytes) / 1e6, unit: "MB",
                    baseline: isFirst ? nil : Double(first.rssBytes) / 1e6, baselineName: isFirst ? nil : "at \(first.tasks)",
                    target: "≤ 150 MB"))
                report.add(Figure(section: "scale", name: "\(label): GET taskcounts", value: point.taskCountsMs, unit: "ms",
                    baseline: isFirst ? nil : first.taskCountsMs, baselineName: isFirst ? nil : "at \(first.tasks)",
                    target: "≤ 5 ms"))
                report.add(Figure(section: "scale", name: "\(label): GET tasks, first page (1000)", value: point.firstPageMs, unit: "ms",
                    baseline: isFirst ? nil : first.firstPageMs, baselineName: isFirst ? nil : "at \(first.tasks)",
                    target: isFirst ? nil : "≤ 1.5× the first"))
                report.add(Figure(section: "scale", name: "\(label): GET prep/release status", value: point.prepReleaseMs, unit: "ms",
                    baseline: isFirst ? nil : first.prepReleaseMs, baselineName: isFirst ? nil : "at \(first.tasks)"))
                report.add(Figure(section: "scale", name: "\(label): daemon start → serving", value: point.readySeconds * 1000, unit: "ms",
                    baseline: coldStart * 1000, baselineName: "empty data dir"))
            }
        }
        if scaleReady, wants("load") {
            print("6. API under load: 16 clients, GET job and a 100-task page, while the job's tasks run")
            let result = try daemon.load(directory: scaleDirectory, clients: 16, seconds: q ? 3 : 10)
            report.add(Figure(section: "load", name: "requests/s (GET job + task page, 16 clients)", value: result.requestsPerSecond, unit: "/s",
                baseline: result.healthRequestsPerSecond, baselineName: "GET /health, new connection each", target: "≥ 5,000/s",
                note: "\(result.tasksRunDuring) tasks completed during the run"))
            report.add(Figure(section: "load", name: "GET job p50", value: result.jobP50, unit: "ms"))
            report.add(Figure(section: "load", name: "GET job p99", value: result.jobP99, unit: "ms"))
            report.add(Figure(section: "load", name: "GET tasks page p50", value: result.pageP50, unit: "ms"))
            report.add(Figure(section: "load", name: "GET tasks page p99", value: result.pageP99, unit: "ms"))
            report.add(Figure(section: "load", name: "tasks completed during the load", value: Double(result.tasksRunDuring), unit: "tasks"))
            print("6b. API: GET job against GET /health from the same 16 keep-alive clients; task pages of 100 and 1,000 from one client")
            let api = try daemon.api(directory: scaleDirectory, clients: 16, seconds: q ? 2 : 5)
            report.add(Figure(section: "api", name: "GET job, 16 keep-alive clients", value: api.jobRequestsPerSecond, unit: "/s",
                baseline: api.healthRequestsPerSecond, baselineName: "GET /health, same keep-alive clients", target: "≥ 0.50 of /health"))
            report.add(Figure(section: "api", name: "GET job p50 (16 clients)", value: api.jobP50, unit: "ms"))
            report.add(Figure(section: "api", name: "100-task page p50 (one client)", value: api.page100P50, unit: "ms", target: "≤ 5 ms"))
            report.add(Figure(section: "api", name: "1,000-task page p50 (one client)", value: api.page1000P50, unit: "ms", target: "≤ 25 ms"))
        }
        if scaleReady, wants("recovery") {
            print("5. recovery: kill -9 with \(sizes.last!) tasks stored, 4 long tasks and the job's tasks running")
            let result = try daemon.recovery(directory: scaleDirectory)
            report.add(Figure(section: "recovery", name: "restart → serving", value: result.readySeconds * 1000, unit: "ms",
                baseline: coldStart * 1000, baselineName: "empty data dir"))
            report.add(Figure(section: "recovery", name: "restart → next dispatch", value: result.dispatchSeconds * 1000, unit: "ms",
                baseline: coldStart * 1000, baselineName: "empty data dir", target: "≤ 1000 ms",
                note: result.adopted ? "the 4 long tasks were adopted, not rerun" : "WARNING: long tasks were not adopted as expected"))
            guard result.adopted else { throw BenchError("recovery: the running tasks were not adopted (see the data directory \(scaleDirectory))") }
        }
        if wants("history") {
            let (jobs, perJob) = q ? (4, 500) : (10, 10_000)
            print("7. history: \(jobs) consecutive jobs of \(perJob) × /bin/true with prep and release, each deleted when done, one engine")
            let rates = try await library.history(jobs: jobs, tasksPerJob: perJob)
            report.add(Figure(section: "history", name: "job 1 tasks/s", value: rates[0], unit: "/s", note: "baseline"))
            report.add(Figure(section: "history", name: "job \(jobs) tasks/s", value: rates[jobs - 1], unit: "/s",
                baseline: rates[0], baselineName: "job 1", target: "≥ 0.95 of job 1"))
            report.add(Figure(section: "history", name: "slowest job tasks/s", value: rates.min() ?? 0, unit: "/s",
                baseline: rates[0], baselineName: "job 1"))
            // One job against one other swings by ±10 % on this kind of machine whatever was stored
            // before it; the last three against the first three says whether the rate drifts.
            let third = max(1, jobs / 3)
            let jobsWord = third == 1 ? "job" : "\(third) jobs"
            report.add(Figure(section: "history", name: "median of the last \(jobsWord)", value: median(Array(rates.suffix(third))),
                unit: "/s", baseline: median(Array(rates.prefix(third))), baselineName: "the first \(jobsWord)"))
        }
        print("")
        print(report.table())
        let jsonPath = options.json ?? resultsRoot + "/results.json"
        try report.json().write(to: URL(fileURLWithPath: jsonPath))
        print("\nJSON: \(jsonPath)")
        if !options.keep { try? FileManager.default.removeItem(atPath: scaleDirectory) }
        if !options.keep, root != resultsRoot { try? FileManager.default.removeItem(atPath: root) }
    }
}

/// `bench-stamp` runs as a task, so as a task account when the engine is root: a build under a
/// folder those accounts cannot enter (a clone under /root) is copied into the scratch folder, and the
/// copy (mode 0755) is what both the tasks and the `posix_spawn` floor run, so the two stay comparable.
private func reachableStamp(_ stamp: String, scratch: String) throws -> String {
    let folder = Paths.parent(of: stamp)
    guard geteuid() == 0, Engine.unreachableFolder(nodesDirectory: folder) != nil else { return stamp }
    let copy = (scratch as NSString).appendingPathComponent("bench-stamp")
    try? FileManager.default.removeItem(atPath: copy)
    do {
        try FileManager.default.copyItem(atPath: stamp, toPath: copy)
    } catch {
        throw BenchError("cannot copy \(stamp) to \(copy), where task accounts can run it: \(error)")
    }
    chmod(copy, 0o755)
    return copy
}

/// Where the benchmarks' data directories go: `--dir` itself, unless the engine runs as root and
/// the task accounts could not reach node folders there (a clone under /root): then a fresh folder
/// under /var/tmp, said in one line, as the sample does.
private func scratchRoot(_ root: String) throws -> String {
    guard geteuid() == 0, let blocking = Engine.unreachableFolder(nodesDirectory: root + "/probe/nodes") else { return root }
    var template = Array("/var/tmp/bookend-bench-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw BenchError("cannot create a scratch folder under /var/tmp: \(String(cString: strerror(errno)))")
    }
    let scratch = String(cString: made)
    chmod(scratch, 0o755)
    print("bookend-bench: task accounts cannot enter \(blocking); data directories go to \(scratch) (results stay in \(root))")
    return scratch
}

import Foundation
import SQLite

/// The floors Bookend's figures are read against, measured in the same run on the same machine.
enum Baselines {
    /// Spawns `/bin/true` `count` times keeping `inFlight` processes running: the most any process
    /// runner on this machine can do with that parallelism. Returns processes per second.
    static func rawSpawn(count: Int, inFlight: Int, durable database: String? = nil) throws -> Double {
        let connection = try database.map {
            try scratchDatabase($0, "CREATE TABLE run (pk INTEGER PRIMARY KEY, pid INTEGER, exit_code INTEGER, state TEXT NOT NULL)")
        }
        defer { if let database { removeDatabase(database) } }
        let program = strdup("/bin/true")
        defer { free(program) }
        var argv: [UnsafeMutablePointer<CChar>?] = [program, nil]
        var running: [pid_t: Int64] = [:]
        var started = 0
        var finished = 0
        let start = monotonicSeconds()
        while finished < count {
            while running.count < inFlight, started < count {
                // With a database: one transaction records the run before it starts, one its exit after:
                // the least a runner that survives a crash must write.
                var row: Int64 = 0
                if let connection {
                    row = try connection.transaction { db in
                        _ = try db.run("INSERT INTO run (state) VALUES ('starting')")
                        return db.lastInsertRowID
                    }
                }
                var pid: pid_t = 0
                let rc = posix_spawn(&pid, "/bin/true", nil, nil, &argv, environ)
                guard rc == 0 else { throw BenchError("posix_spawn failed: \(String(cString: strerror(rc)))") }
                running[pid] = row
                started += 1
            }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            guard pid > 0, let row = running.removeValue(forKey: pid) else { continue }
            if let connection {
                try connection.transaction { db in
                    _ = try db.run("UPDATE run SET state = 'completed', pid = ?, exit_code = ? WHERE pk = ?", [Int64(pid), Int64(status), row])
                }
            }
            finished += 1
        }
        return Double(count) / (monotonicSeconds() - start)
    }
}

extension Baselines {
    /// `bench-stamp --spawn-loop`: `/bin/true` `count` times with `inFlight` running, from a C loop;
    /// with `statusRoot`, each through a forked shim that writes a `pid` and an `exit` file into the
    /// inodes the slot's last shim left, as Bookend's shims do (`Sources/bench-stamp/main.c`).
    /// Processes per second. The two together say what one supervising process per command costs by
    /// itself, before any scheduler or database: the ceiling of a runner built that way, against the
    /// same machine's raw rate.
    static func cSpawnLoop(stamp: String, count: Int, inFlight: Int, statusRoot: String? = nil) throws -> Double {
        if let statusRoot { try FileManager.default.createDirectory(atPath: statusRoot, withIntermediateDirectories: true) }
        defer { if let statusRoot { try? FileManager.default.removeItem(atPath: statusRoot) } }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: stamp)
        process.arguments = ["--spawn-loop", String(count), String(inFlight)] + (statusRoot.map { [$0] } ?? [])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationStatus == 0, let rate = Double(text) else {
            throw BenchError("\(stamp) --spawn-loop ended with status \(process.terminationStatus), printing \"\(text)\"")
        }
        return rate
    }
}

extension Baselines {
    /// From just before `posix_spawn` to the spawned `bench-stamp` reading the clock: the floor of
    /// any submit → start latency on this machine. Milliseconds.
    ///
    /// With `durable`, each sample first commits one row to that database with `synchronous=FULL`
    /// (timed from before the commit): the floor of a runner that, like Bookend, makes a submission
    /// durable before it may start, so that an acknowledged task is never lost and a task never runs
    /// without its record. The difference between the two floors is one commit's `fdatasync` on the
    /// benchmark's file system.
    static func spawnLatency(stamp: String, samples: Int, durable database: String? = nil) throws -> [Double] {
        let connection = try database.map { try scratchDatabase($0, "CREATE TABLE submission (pk INTEGER PRIMARY KEY, state TEXT NOT NULL)") }
        defer { if let database { removeDatabase(database) } }
        var latencies: [Double] = []
        let program = strdup(stamp)
        defer { free(program) }
        for _ in 0..<samples {
            let (before, started) = try runStamp(program: program, stamp: stamp) {
                try connection?.transaction { db in _ = try db.run("INSERT INTO submission (state) VALUES ('submitted')") }
            }
            latencies.append(Double(started - before) / 1e6)
        }
        return latencies
    }

    /// From one `bench-stamp` process's clock reading to the next one's, where the second is spawned
    /// once the first has exited and that exit is committed (`synchronous=FULL`): the floor of
    /// preparation start → first task start for a runner that records a preparation's success
    /// before it starts the job's tasks on the node. Milliseconds.
    static func chainLatency(stamp: String, samples: Int, database: String) throws -> [Double] {
        let connection = try scratchDatabase(database, "CREATE TABLE run (pk INTEGER PRIMARY KEY, kind TEXT NOT NULL, exit_code INTEGER)")
        defer { removeDatabase(database) }
        let program = strdup(stamp)
        defer { free(program) }
        var gaps: [Double] = []
        for _ in 0..<samples {
            let first = try runStamp(program: program, stamp: stamp).started
            try connection.transaction { db in _ = try db.run("INSERT INTO run (kind, exit_code) VALUES ('preparation', 0)") }
            let second = try runStamp(program: program, stamp: stamp).started
            gaps.append(Double(second - first) / 1e6)
        }
        return gaps
    }

    /// A new FULL-sync database at `path` (whatever was there removed) holding `schema`.
    static func scratchDatabase(_ path: String, _ schema: String) throws -> Connection {
        removeDatabase(path)
        let connection = try Connection(path: path, options: ConnectionOptions(synchronous: .full))
        try connection.execute(schema)
        return connection
    }

    /// A scratch database and its WAL and shared-memory files.
    static func removeDatabase(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// Spawns `bench-stamp` with its stdout on a pipe, waits for it to exit and returns the wall clock
    /// just before `prelude` and `posix_spawn`, and the clock the program printed when it started
    /// (nanoseconds).
    private static func runStamp(program: UnsafeMutablePointer<CChar>?, stamp: String,
                                 prelude: () throws -> Void = {}) throws -> (before: Int64, started: Int64) {
        var argv: [UnsafeMutablePointer<CChar>?] = [program, nil]
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw BenchError("pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        var pid: pid_t = 0
        let before = wallNanoseconds()
        do { try prelude() } catch {
            posix_spawn_file_actions_destroy(&actions)
            close(pipeEnds[0])
            close(pipeEnds[1])
            throw error
        }
        let rc = posix_spawn(&pid, stamp, &actions, nil, &argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        close(pipeEnds[1])
        guard rc == 0 else {
            close(pipeEnds[0])
            throw BenchError("posix_spawn \(stamp) failed: \(String(cString: strerror(rc)))")
        }
        var output = [UInt8](repeating: 0, count: 64)
        var length = 0
        while length < output.count {
            let n = output[length...].withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            length += n
        }
        close(pipeEnds[0])
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return (before, try LibraryBenches.stampValue(Data(output[0..<length])))
    }

    /// Inserts rows shaped like stored tasks (a unique id per job, a JSON spec), 100 per transaction
    /// with `synchronous=FULL`: the floor of durable ingest. Rows per second.
    static func rawInsert(count: Int, path: String) throws -> Double {
        let connection = try scratchDatabase(path, """
            CREATE TABLE task (pk INTEGER PRIMARY KEY, job_pk INTEGER NOT NULL, id TEXT NOT NULL, command_line TEXT NOT NULL,
                spec TEXT NOT NULL, state TEXT NOT NULL, creation_time TEXT NOT NULL, UNIQUE (job_pk, id))
            """)
        defer { removeDatabase(path) }
        let start = monotonicSeconds()
        var next = 0
        while next < count {
            let end = min(next + 100, count)
            try connection.transaction { db in
                for i in next..<end {
                    _ = try db.run(
                        "INSERT INTO task (job_pk, id, command_line, spec, state, creation_time) VALUES (1, ?, '/bin/true', ?, 'active', ?)",
                        ["task-\(i)", #"{"commandLine":"/bin/true","id":"task-\#(i)"}"#, "2026-11-28T00:00:00.000Z"])
                }
            }
            next = end
        }
        return Double(count) / (monotonicSeconds() - start)
    }
}

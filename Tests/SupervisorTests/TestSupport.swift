import Foundation
import Glibc
import Synchronization
@testable import Supervisor

/// Scratch directories live under <package>/.build/supervisor-test-tmp (or $BOOKEND_TEST_TMP).
struct Scratch {
    let path: String

    init(_ name: String = "t") {
        let base: String
        if let env = ProcessInfo.processInfo.environment["BOOKEND_TEST_TMP"] {
            base = env
        } else {
            let root = URL(fileURLWithPath: #filePath)
                .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            base = root.appendingPathComponent(".build/supervisor-test-tmp").path
        }
        path = "\(base)/\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func request(_ args: [String], status: String = "status", env: [String: String] = [:],
                 cwd: String? = nil, runAs: RunAs? = nil) -> LaunchRequest {
        LaunchRequest(
            executablePath: args[0], arguments: args, environment: env,
            workingDirectory: cwd ?? path, stdoutPath: file("stdout"), stderrPath: file("stderr"),
            statusDirectory: file(status), runAs: runAs)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Blocks until the shim exits (the exit file is written before that) and reaps it.
func waitShim(_ id: ProcessIdentity) {
    var st: Int32 = 0
    while waitpid(id.pid, &st, 0) < 0 && errno == EINTR {}
}

func launchAndWait(_ r: LaunchRequest) throws -> ExitStatus? {
    let id = try Supervisor.launch(r)
    waitShim(id)
    return Supervisor.readStatus(in: r.statusDirectory)
}

func readText(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// Polls `condition` every 5 ms; returns false if it is still unmet after `seconds`
/// (a generous safety bound, not a timing assertion).
@discardableResult
func pollUntil(seconds: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while !condition() {
        if Date() > deadline { return false }
        usleep(5_000)
    }
    return true
}

/// Our own children that are zombies right now.
/// Which of `pids` are unreaped children of this process. Only the test's own pids are looked at:
/// every suite shares one test process, and other suites' children come and go meanwhile.
func zombieChildren(among pids: [Int32]) -> [Int32] {
    let me = getpid()
    return pids.filter { pid in
        guard let st = ProcStat.read(pid: pid) else { return false }
        return st.ppid == me && st.isZombie
    }
}

/// True once `id` is fully gone (no /proc entry, or the pid belongs to someone else).
func isGone(_ id: ProcessIdentity) -> Bool {
    Supervisor.identity(ofPID: id.pid) != id
}

final class Recorder: Sendable {
    let calls = Mutex<[ProcessIdentity: Int]>([:])
    func record(_ id: ProcessIdentity) { calls.withLock { $0[id, default: 0] += 1 } }
    var total: Int { calls.withLock { $0.values.reduce(0, +) } }
    func count(_ id: ProcessIdentity) -> Int { calls.withLock { $0[id] ?? 0 } }
}

/// `Testing` also exports an `ExitStatus`; this file does not import Testing, so the alias is unambiguous.
typealias BKExitStatus = ExitStatus

/// This process's idle spare shims (`Supervisor.isIdleSpareShim` holds only children of this process).
func idleSpares() -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter(Supervisor.isIdleSpareShim)
}

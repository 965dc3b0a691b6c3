import Dispatch
import Foundation
import Glibc
import Synchronization
import TestSupport
import Testing
@testable import Supervisor

/// Real processes, no mocks. Serialized so the zombie checks see only this suite's children.
@Suite(.serialized, .ownThread) struct SupervisorTests {
    @Test func exitCodesLandInStatusFile() throws {
        let s = Scratch(); defer { s.remove() }
        let zero = try launchAndWait(s.request(["/bin/sh", "-c", "exit 0"]))
        #expect(zero == .exited(0))
        #expect(zero?.exitCode == 0)
        let three = try launchAndWait(s.request(["/bin/sh", "-c", "exit 3"], status: "s3"))
        #expect(three == .exited(3))
        #expect(three?.exitCode == 3)
        #expect(readText(s.file("s3/exit")) == "exit 3\n")
    }

    /// A recycled status folder keeps `exit.tmp` and `pid.tmp` from its last execution; the shim writes
    /// over them in place, and whatever was longer is cut off: `exit` and `pid` hold exactly the new lines.
    @Test func keptTemporaryFilesAreOverwrittenWhole() throws {
        let s = Scratch(); defer { s.remove() }
        try FileManager.default.createDirectory(atPath: s.file("kept"), withIntermediateDirectories: false)
        let junk = String(repeating: "signal 9999999\n", count: 300)
        for name in ["exit.tmp", "pid.tmp"] { try junk.write(toFile: s.file("kept/\(name)"), atomically: false, encoding: .utf8) }
        let id = try Supervisor.launch(s.request(["/bin/sh", "-c", "exit 7"], status: "kept"))
        waitShim(id)
        #expect(readText(s.file("kept/exit")) == "exit 7\n")
        #expect(Supervisor.readStatus(in: s.file("kept")) == .exited(7))
        #expect(Supervisor.readIdentity(in: s.file("kept")) == id)
        #expect(readText(s.file("kept/pid")).split(separator: "\n").count == 1)
    }

    @Test func signaledProcess() throws {
        let s = Scratch(); defer { s.remove() }
        let status = try launchAndWait(s.request(["/bin/sh", "-c", "kill -9 $$"]))
        #expect(status == .signaled(9))
        #expect(status?.exitCode == 137)
    }

    @Test func stdoutAndStderrAreAppended() throws {
        let s = Scratch(); defer { s.remove() }
        let req = s.request(["/bin/sh", "-c", "echo out; echo err >&2"])
        #expect(try launchAndWait(req) == .exited(0))
        #expect(try launchAndWait(req) == .exited(0))  // same status dir: stale files are cleared
        #expect(readText(s.file("stdout")) == "out\nout\n")
        #expect(readText(s.file("stderr")) == "err\nerr\n")
    }

    /// The shim ignores SIGTERM and a few others so it can record how the command reacted to them;
    /// the command itself must start with every signal at its default and none blocked, or a
    /// terminate request would never reach it. Read by the command from its own /proc entry.
    @Test func theCommandStartsWithNoSignalIgnoredOrBlocked() throws {
        let s = Scratch(); defer { s.remove() }
        for _ in 0..<2 {  // the second through a shim forked from an already running helper
            #expect(try launchAndWait(s.request(["/bin/cat", "/proc/self/status"])) == .exited(0))
            let fields = Dictionary(readText(s.file("stdout")).split(separator: "\n").compactMap { line -> (String, String)? in
                let parts = line.split(separator: ":", maxSplits: 1)
                return parts.count == 2 ? (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces)) : nil
            }, uniquingKeysWith: { _, last in last })
            #expect(fields["SigIgn"] == "0000000000000000", "\(fields)")
            #expect(fields["SigBlk"] == "0000000000000000", "\(fields)")
            #expect(fields["SigCgt"] == "0000000000000000", "\(fields)")
            try? FileManager.default.removeItem(atPath: s.file("stdout"))
        }
    }

    @Test func environmentAndWorkingDirectory() throws {
        let s = Scratch(); defer { s.remove() }
        let env = ["FOO": "bar baz", "BOOKEND_X": "1"]
        #expect(try launchAndWait(s.request(["/usr/bin/env"], env: env)) == .exited(0))
        let lines = readText(s.file("stdout")).split(separator: "\n").map(String.init)
        #expect(Set(lines) == ["FOO=bar baz", "BOOKEND_X=1"])

        let wd = s.file("work dir")
        try FileManager.default.createDirectory(atPath: wd, withIntermediateDirectories: true)
        var req = s.request(["/bin/pwd"], status: "s2", cwd: wd)
        req.stdoutPath = s.file("pwd.out")
        #expect(try launchAndWait(req) == .exited(0))
        #expect(readText(s.file("pwd.out")) == wd + "\n")
    }

    @Test func missingExecutableIsALaunchFailure() throws {
        let s = Scratch(); defer { s.remove() }
        let req = s.request([s.file("no-such-binary")])
        do {
            _ = try Supervisor.launch(req)
            Issue.record("launch should have failed")
        } catch {
            #expect(error.code == .launchFailed)
            #expect(error.stage == "exec")
            #expect(error.errno == ENOENT)
        }
        #expect(Supervisor.readStatus(in: req.statusDirectory) == .launchFailed(stage: "exec", errno: ENOENT))
        #expect(Supervisor.readStatus(in: req.statusDirectory)?.exitCode == nil)
        let shim = try #require(Supervisor.readIdentity(in: req.statusDirectory))
        #expect(zombieChildren(among: [shim.pid]).isEmpty)
    }

    /// A NUL byte would cut a C string short (an argument, a path or a variable would silently become
    /// another), and a `=` in a variable's name would split it elsewhere: each is refused before any
    /// fork, naming the string, and nothing starts (no status folder is even made).
    @Test func nulBytesAndBadVariableNamesAreRefusedBeforeAnyFork() throws {
        let s = Scratch(); defer { s.remove() }
        let cases: [(LaunchRequest, String)] = [
            (s.request(["/bin/echo", "a\u{0}b"], status: "argument"), "a\u{0}b"),
            (s.request(["/bin/true"], status: "value", env: ["NAME": "x\u{0}y"]), "x\u{0}y"),
            (s.request(["/bin/true"], status: "name", env: ["NA\u{0}ME": "x"]), "NA\u{0}ME"),
            (s.request(["/bin/true"], status: "equals", env: ["A=B": "x"]), "A=B"),
            (s.request(["/bin/true"], status: "empty", env: ["": "x"]), ""),
            (s.request(["/bin/true"], status: "status\u{0}dir"), s.file("status\u{0}dir")),
        ]
        for (request, bad) in cases {
            do {
                _ = try Supervisor.launch(request)
                Issue.record("launching with \(bad.debugDescription) should have failed")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains(bad.debugDescription), "\(error.message)")
            }
            #expect(!FileManager.default.fileExists(atPath: request.statusDirectory.split(separator: "\u{0}")[0].description))
        }
    }

    /// A FIFO (or anything but a regular file) where the output should go fails the launch at once:
    /// a blocking open of a FIFO without a reader would hold the command before its exec, and the
    /// caller waiting for that exec with it. One FIFO has a reader holding it open, so its open
    /// succeeds and the type check is what refuses it.
    @Test(arguments: [false, true])
    func aFIFOInPlaceOfAnOutputFileIsALaunchFailureNotAHang(withReader: Bool) throws {
        let s = Scratch(); defer { s.remove() }
        let req = s.request(["/bin/true"])
        #expect(mkfifo(req.stderrPath, 0o600) == 0)
        var reader: Int32 = -1
        if withReader { reader = open(req.stderrPath, O_RDONLY | O_NONBLOCK) }
        defer { if reader >= 0 { close(reader) } }
        #expect(!withReader || reader >= 0)
        let started = ContinuousClock.now
        do {
            _ = try Supervisor.launch(req)
            Issue.record("a FIFO as stderr should have failed the launch")
        } catch {
            #expect(error.code == .launchFailed)
            #expect(error.stage == "open")
            #expect(error.errno == (withReader ? EINVAL : ENXIO))
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(Supervisor.readStatus(in: req.statusDirectory) == .launchFailed(stage: "open", errno: withReader ? EINVAL : ENXIO))
        let shim = try #require(Supervisor.readIdentity(in: req.statusDirectory))
        waitShim(shim)
    }

    /// A command that does not reach its exec within the start timeout (its shim stuck before it)
    /// fails to start, and its shim is killed: the caller never waits without end.
    @Test func aStartStuckBeforeExecTimesOutAndIsKilled() throws {
        let s = Scratch(); defer { s.remove() }
        var req = s.request(["/bin/true"])
        req.startTimeout = .milliseconds(300)
        req.testDelayMilliseconds = 5_000
        let started = ContinuousClock.now
        do {
            _ = try Supervisor.launch(req)
            Issue.record("a start held past its timeout should have failed")
        } catch {
            #expect(error.code == .launchFailed)
            #expect(error.stage == "start-timeout")
            #expect(error.errno == ETIMEDOUT)
            #expect(error.message.contains("did not start within"), "\(error.message)")
        }
        #expect(ContinuousClock.now - started < .seconds(4))
        // Nothing ran, and nothing of it is left.
        #expect(Supervisor.readStatus(in: req.statusDirectory) == nil)
        #expect(Supervisor.readIdentity(in: req.statusDirectory) == nil)
        // The same request without the delay starts at once.
        req.testDelayMilliseconds = 0
        let shim = try Supervisor.launch(req)
        waitShim(shim)
        #expect(Supervisor.readStatus(in: req.statusDirectory) == .exited(0))
    }

    @Test func badWorkingDirectoryIsALaunchFailure() throws {
        let s = Scratch(); defer { s.remove() }
        let req = s.request(["/bin/true"], cwd: s.file("missing-dir"))
        #expect(throws: SupervisorError.self) { try Supervisor.launch(req) }
        do { _ = try Supervisor.launch(req) } catch {
            #expect(error.code == .launchFailed)
            #expect(error.stage == "chdir")
            #expect(error.errno == ENOENT)
        }
        #expect(Supervisor.readStatus(in: req.statusDirectory) == .launchFailed(stage: "chdir", errno: ENOENT))
        let shim = try #require(Supervisor.readIdentity(in: req.statusDirectory))
        #expect(zombieChildren(among: [shim.pid]).isEmpty)
    }

    @Test func shimRunsInItsOwnSession() throws {
        let s = Scratch(); defer { s.remove() }
        let req = s.request(["/bin/sleep", "30"])
        let id = try Supervisor.launch(req)
        defer { Supervisor.signalGroup(id, SIGKILL); waitShim(id) }
        #expect(Supervisor.readIdentity(in: req.statusDirectory) == id)
        #expect(Supervisor.isAlive(id))
        let st = try #require(ProcStat.read(pid: id.pid))
        #expect(st.session == id.pid)
        #expect(st.pgrp == id.pid)
        #expect(st.pgrp != getpgrp())
        #expect(st.session != getsid(0))
        #expect(readText("/proc/\(id.pid)/status").contains("PPid:\t\(getpid())"))
    }

    @Test func sigtermIsRecordedBecauseTheShimOutlivesIt() throws {
        let s = Scratch(); defer { s.remove() }
        let req = s.request(["/bin/sleep", "30"])
        let id = try Supervisor.launch(req)
        #expect(Supervisor.signalGroup(id, SIGTERM))
        waitShim(id)
        #expect(Supervisor.readStatus(in: req.statusDirectory) == .signaled(SIGTERM))
        #expect(!Supervisor.isAlive(id))
    }

    @Test func signalGroupKillsGrandchildren() throws {
        let s = Scratch(); defer { s.remove() }
        let pidFile = s.file("bg.pid")
        let req = s.request(["/bin/sh", "-c", "sleep 100 & echo $! > '\(pidFile)'; sleep 100; wait"])
        let id = try Supervisor.launch(req)
        #expect(pollUntil { readText(pidFile).hasSuffix("\n") })
        let bg = try #require(Int32(readText(pidFile).trimmingNewlines))
        let bgID = try #require(Supervisor.identity(ofPID: bg))
        #expect(Supervisor.isAlive(bgID))
        #expect(ProcStat.read(pid: bg)?.pgrp == id.pid)

        #expect(Supervisor.signalGroup(id, SIGKILL))
        waitShim(id)
        #expect(!Supervisor.isAlive(id))
        // Killed: gone, or a zombie waiting for whoever adopted it.
        #expect(pollUntil { !Supervisor.isAlive(bgID) })
        #expect(Supervisor.readStatus(in: req.statusDirectory) == nil)  // shim died with the group
    }

    @Test func identityGuardsAgainstPidReuse() throws {
        let me = try #require(Supervisor.identity(ofPID: getpid()))
        #expect(Supervisor.isAlive(me))
        let impostor = ProcessIdentity(pid: me.pid, startTime: me.startTime + 1)
        #expect(!Supervisor.isAlive(impostor))
        #expect(!Supervisor.signalGroup(impostor, 0))
        #expect(Supervisor.identity(ofPID: Int32.max) == nil)
        #expect(!Supervisor.isAlive(ProcessIdentity(pid: Int32.max, startTime: 1)))
    }

    @Test func resolveExecutable() throws {
        let s = Scratch(); defer { s.remove() }
        let sh = try #require(Supervisor.resolveExecutable("sh", path: "/nonexistent:/usr/bin:/bin", workingDirectory: "/"))
        // The first directory of the search path that has it, as a shell would pick.
        let first = ["/usr/bin/sh", "/bin/sh"].first { FileManager.default.isExecutableFile(atPath: $0) }
        #expect(sh == first)
        #expect(Supervisor.resolveExecutable("/bin/sh", path: nil, workingDirectory: "/") == "/bin/sh")
        #expect(Supervisor.resolveExecutable("no-such-cmd-xyz", path: nil, workingDirectory: "/") == nil)
        #expect(Supervisor.resolveExecutable("/usr", path: nil, workingDirectory: "/") == nil)  // a directory

        let script = s.file("bin/run.sh")
        try FileManager.default.createDirectory(atPath: s.file("bin"), withIntermediateDirectories: true)
        try "#!/bin/sh\nexit 0\n".write(toFile: script, atomically: true, encoding: .utf8)
        #expect(Supervisor.resolveExecutable("bin/run.sh", path: nil, workingDirectory: s.path) == nil)  // not +x
        chmod(script, 0o755)
        #expect(Supervisor.resolveExecutable("bin/run.sh", path: nil, workingDirectory: s.path) == script)
        #expect(Supervisor.resolveExecutable("./bin/run.sh", path: nil, workingDirectory: s.path) == s.path + "/./bin/run.sh")
        #expect(Supervisor.resolveExecutable("run.sh", path: "bin", workingDirectory: s.path) == script)
        #expect(Supervisor.resolveExecutable("run.sh", path: "/usr/bin", workingDirectory: s.path) == nil)
    }

    @Test func readStatusParsing() throws {
        let s = Scratch(); defer { s.remove() }
        func status(_ text: String) -> BKExitStatus? {
            try? text.write(toFile: s.file("exit"), atomically: true, encoding: .utf8)
            return Supervisor.readStatus(in: s.path)
        }
        #expect(status("exit 0\n") == .exited(0))
        #expect(status("signal 15\n") == .signaled(15))
        #expect(status("launch setuid 1\n") == .launchFailed(stage: "setuid", errno: 1))
        #expect(status("exit\n") == nil)
        #expect(status("garbage 1 2 3") == nil)
        #expect(Supervisor.readStatus(in: s.file("nowhere")) == nil)
    }

    @Test func watcherReportsManyConcurrentProcessesExactlyOnce() throws {
        let s = Scratch(); defer { s.remove() }
        let recorder = Recorder()
        let watcher = try ExitWatcher { recorder.record($0) }
        defer { watcher.stop() }
        let launched = Mutex<[ProcessIdentity]>([])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 200) { i in
            do {
                let id = try Supervisor.launch(s.request(["/bin/sh", "-c", "exit \(i % 7)"], status: "st\(i)"))
                watcher.watch(id)
                launched.withLock { $0.append(id) }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty)
        let ids = launched.withLock { $0 }
        #expect(ids.count == 200)
        #expect(pollUntil(seconds: 60) { recorder.total >= ids.count })
        #expect(recorder.total == ids.count)
        for id in ids { #expect(recorder.count(id) == 1) }
        #expect(ids.allSatisfy(isGone))
        #expect(zombieChildren(among: ids.map(\.pid)).isEmpty)
        for i in 0..<200 {
            #expect(Supervisor.readStatus(in: s.file("st\(i)")) == .exited(Int32(i % 7)))
        }
        #expect(watcher.watchedCount == 0)
    }

    @Test func watcherHandlesProcessesThatExitedBeforeWatch() throws {
        let s = Scratch(); defer { s.remove() }
        let recorder = Recorder()
        let watcher = try ExitWatcher { recorder.record($0) }
        defer { watcher.stop() }

        // 1. Exited but not reaped (a zombie child): pidfd is readable at once; we reap it.
        let req = s.request(["/bin/true"], status: "zombie")
        let zombie = try Supervisor.launch(req)
        #expect(pollUntil { ProcStat.read(pid: zombie.pid)?.isZombie == true })
        watcher.watch(zombie)
        #expect(pollUntil { recorder.count(zombie) == 1 })
        #expect(isGone(zombie))
        #expect(Supervisor.readStatus(in: req.statusDirectory) == .exited(0))

        // 2. Exited and already reaped: pidfd_open fails with ESRCH, onExit runs immediately.
        let reaped = try Supervisor.launch(s.request(["/bin/true"], status: "reaped"))
        waitShim(reaped)
        watcher.watch(reaped)
        #expect(recorder.count(reaped) == 1)
        #expect(zombieChildren(among: [zombie.pid, reaped.pid]).isEmpty)
    }

    @Test func watcherHandlesNonChildProcesses() throws {
        let s = Scratch(); defer { s.remove() }
        // The shell backgrounds a sleep and exits: the sleep is orphaned, so not our child.
        let req = s.request(["/bin/sh", "-c", "sleep 1 & echo $!"])
        #expect(try launchAndWait(req) == .exited(0))
        let pid = try #require(Int32(readText(s.file("stdout")).trimmingNewlines))
        let orphan = try #require(Supervisor.identity(ofPID: pid))
        #expect(ProcStat.read(pid: pid)?.ppid != getpid())

        let recorder = Recorder()
        let watcher = try ExitWatcher { recorder.record($0) }
        defer { watcher.stop() }
        watcher.watch(orphan)
        watcher.watch(orphan)  // duplicate watch is ignored
        #expect(pollUntil { recorder.count(orphan) >= 1 })
        #expect(recorder.count(orphan) == 1)
        #expect(!Supervisor.isAlive(orphan))
    }

    @Test func watcherPollingFallbackReapsAndReports() throws {
        let s = Scratch(); defer { s.remove() }
        let recorder = Recorder()
        let watcher = try ExitWatcher(usePidfd: false) { recorder.record($0) }
        defer { watcher.stop() }
        var ids: [ProcessIdentity] = []
        for i in 0..<5 {
            let id = try Supervisor.launch(s.request(["/bin/sh", "-c", "sleep 0.1; exit \(i)"], status: "st\(i)"))
            watcher.watch(id)
            ids.append(id)
        }
        #expect(pollUntil { recorder.total >= ids.count })
        for id in ids { #expect(recorder.count(id) == 1) }
        #expect(ids.allSatisfy(isGone))
        #expect(zombieChildren(among: ids.map(\.pid)).isEmpty)
        #expect(Supervisor.readStatus(in: s.file("st4")) == .exited(4))
    }

    @Test func watcherStopEndsTheThread() throws {
        let s = Scratch(); defer { s.remove() }
        let recorder = Recorder()
        let watcher = try ExitWatcher { recorder.record($0) }
        let id = try Supervisor.launch(s.request(["/bin/sleep", "30"]))
        watcher.watch(id)
        #expect(watcher.watchedCount == 1)
        watcher.stop()
        watcher.stop()  // idempotent
        #expect(watcher.watchedCount == 0)
        Supervisor.signalGroup(id, SIGKILL)
        waitShim(id)
        #expect(recorder.total == 0)
    }

    @Test(.enabled(if: getuid() == 0, "needs root to switch users"))
    func runAsAnotherUser() throws {
        let s = Scratch(); defer { s.remove() }
        // The command opens its own output after switching users (root never opens what a task
        // could have put there), so the folder must be reachable by that user: not under the
        // package, which may sit in a 0700 home.
        var template = Array("/tmp/bookend-runas-XXXXXX".utf8CString)
        let out = try #require(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }.map { String(cString: $0) })
        defer { try? FileManager.default.removeItem(atPath: out) }
        chmod(out, 0o777)
        var req = s.request(["/usr/bin/id", "-u"], cwd: "/", runAs: RunAs(uid: 65534, gid: 65534))
        req.stdoutPath = out + "/stdout"
        req.stderrPath = out + "/stderr"
        #expect(try launchAndWait(req) == .exited(0))
        #expect(readText(out + "/stdout") == "65534\n")

        var groups = req
        groups.arguments = ["/usr/bin/id", "-G"]
        groups.stdoutPath = out + "/groups"
        #expect(try launchAndWait(groups) == .exited(0))
        #expect(readText(out + "/groups") == "65534\n")  // supplementary groups dropped
    }
}

/// Shims come from the spawn helper (a small re-executed copy of this program), not from a fork of
/// the caller, yet they are the caller's children: the caller reaps them and reads their exit codes.
@Suite(.serialized, .ownThread) struct SpawnHelperTests {
    @Test func shimsAreForkedByTheHelperAsChildrenOfTheCaller() throws {
        let s = Scratch(); defer { s.remove() }
        // The command waits for a file, so the shim is still running (and has a command line) when read.
        let go = s.file("go")
        let id = try Supervisor.launch(s.request(["/bin/sh", "-c", "while [ ! -e '\(go)' ]; do sleep 0.05; done; exit 4"]))
        let command = readSmallFile("/proc/\(id.pid)/cmdline").map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        #expect(command == "bookend-spawn-helper")
        #expect(ProcStat.read(pid: id.pid)?.ppid == getpid())
        #expect(ProcStat.read(pid: id.pid)?.session == id.pid)
        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        var status: Int32 = 0
        #expect(waitpid(id.pid, &status, 0) == id.pid)
        #expect(status == 0)  // the shim wrote its exit file
        #expect(Supervisor.readStatus(in: s.file("status")) == .exited(4))
    }

    /// The helper keeps a shim forked ahead: set up in its own session, a child of the caller, named
    /// as a spare while it waits. The next launch is handed to it, and from then on it is an ordinary
    /// shim under the helper's name, one a restarted engine would wait for.
    @Test func theNextLaunchIsHandedToTheSpareShimForkedAhead() throws {
        let s = Scratch(); defer { s.remove() }
        // The first launch in this process starts the helper, which forks its first spare.
        waitShim(try Supervisor.launch(s.request(["/bin/true"], status: "warm")))
        let go = s.file("go")
        var taken = false, sparesSeen = 0, attempts = 0
        // Other suites launch through the same helper in parallel: a spare seen idle may be taken by
        // one of their launches first, and while they launch back to back a spare is idle only for
        // moments. So keep trying for a while; without spares no attempt can succeed.
        let deadline = Date().addingTimeInterval(180)
        while !taken && Date() < deadline {
            attempts += 1
            var spare: Int32?
            _ = pollUntil(seconds: 5) {
                spare = idleSpares().first
                return spare != nil
            }
            // Read once, then make sure it was still an idle spare after the read: a launch of another
            // suite may have taken it meanwhile, run its command and reaped it (the read finds nothing).
            guard let waiting = spare else { continue }
            sparesSeen += 1
            guard let stat = ProcStat.read(pid: waiting), Supervisor.isIdleSpareShim(waiting) else { continue }
            #expect(stat.session == waiting)
            #expect(stat.ppid == getpid())
            let status = "s\(attempts)"
            let id = try Supervisor.launch(s.request(["/bin/sh", "-c", "while [ ! -e '\(go)' ]; do sleep 0.05; done; exit 6"], status: status))
            taken = id.pid == waiting
            // Running a command, it is no spare any more (nor idle), and its identity is on disk.
            #expect(!Supervisor.isIdleSpareShim(id.pid))
            #expect(Supervisor.readIdentity(in: s.file(status)) == id)
            #expect(ProcStat.read(pid: id.pid)?.session == id.pid)
            #expect(FileManager.default.createFile(atPath: go, contents: nil))
            waitShim(id)
            #expect(Supervisor.readStatus(in: s.file(status)) == .exited(6))
            try? FileManager.default.removeItem(atPath: go)
        }
        #expect(taken, "no launch was handed the spare shim that waited for it (\(attempts) attempts, \(sparesSeen) idle spares seen)")
    }

    /// A batch of launches has one spare at most; the helper forks the other shims and its answers
    /// (their pids) are collected after every request has gone out. Each command must end up with
    /// its own shim's identity, whatever order the answers are read in and whatever launches of
    /// other suites go through the same helper meanwhile.
    @Test func aBatchGivesEveryCommandItsOwnShimWhenTheHelperAnswersLater() throws {
        let s = Scratch(); defer { s.remove() }
        waitShim(try Supervisor.launch(s.request(["/bin/true"], status: "warm")))
        // The last round holds more requests than the helper's tables of tickets start with, and more
        // than the 256 a fixed table once held: a pass on a large pool starts that many.
        for (round, size) in [8, 8, 8, 300].enumerated() {
            let folders = (0..<size).map { "r\(round)-\($0)" }
            let codes = (0..<size).map { Int32(10 + $0 % 200) }
            let results = Supervisor.launch((0..<size).map { s.request(["/bin/sh", "-c", "exit \(codes[$0])"], status: folders[$0]) })
            #expect(results.count == size)
            var pids: Set<Int32> = []
            for (i, result) in results.enumerated() {
                let id = try result.get()
                pids.insert(id.pid)
                // The identity the launch returned is the one that shim wrote for this command.
                #expect(Supervisor.readIdentity(in: s.file(folders[i])) == id, "command \(i) of round \(round) got another shim's identity")
                #expect(ProcStat.read(pid: id.pid)?.ppid == getpid())
                waitShim(id)
                #expect(Supervisor.readStatus(in: s.file(folders[i])) == .exited(codes[i]))
            }
            #expect(pids.count == size)
        }
    }

    /// The engine holds the socket of the spare the helper announced. A spare killed while it waits
    /// must not take the next launch with it: the request goes to the helper, the command runs, and
    /// the helper forks a new spare once it sees the dead one's end.
    @Test func aSpareKilledWhileItWaitsCostsNoLaunch() throws {
        let s = Scratch(); defer { s.remove() }
        waitShim(try Supervisor.launch(s.request(["/bin/true"], status: "warm")))
        // Killed under the launch lock, so no launch of another suite is on its way to it. Another
        // suite's launch may just have used the spare held before: wait for the next one.
        var killed: Int32?
        _ = pollUntil(seconds: 60) {
            killed = Supervisor.killHeldSpareForTests()
            return killed != nil
        }
        let dead = try #require(killed, "this process never held a spare shim")
        for attempt in 0..<3 {
            let status = "after\(attempt)"
            let id = try Supervisor.launch(s.request(["/bin/sh", "-c", "exit 7"], status: status))
            #expect(id.pid != dead)
            waitShim(id)
            #expect(Supervisor.readStatus(in: s.file(status)) == .exited(7))
        }
        // The killed spare was reaped by the launches (it is this process's child): no zombie stays.
        #expect(pollUntil(seconds: 10) { kill(dead, 0) != 0 && errno == ESRCH }, "the killed spare \(dead) was left unreaped")
        #expect(pollUntil(seconds: 60) { !idleSpares().isEmpty }, "no new spare after the killed one")
    }

    /// The shim writes its identity while the command's program loads. When it cannot (here `pid.tmp`
    /// is a folder), it must not leave that command running where nobody could find it: it kills the
    /// command and the launch fails at the "status" stage.
    @Test func aShimThatCannotWriteItsIdentityLeavesNoCommandRunning() throws {
        let s = Scratch(); defer { s.remove() }
        try FileManager.default.createDirectory(atPath: s.file("status/pid.tmp"), withIntermediateDirectories: true)
        let marker = s.file("still-ran")
        do {
            let id = try Supervisor.launch(s.request(["/bin/sh", "-c", "sleep 0.5; touch '\(marker)'"]))
            waitShim(id)
            Issue.record("the launch succeeded, yet the shim could not write its pid file")
        } catch {
            #expect(error.code == .launchFailed)
            #expect(error.stage == "status")
        }
        usleep(1_000_000)
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(Supervisor.readIdentity(in: s.file("status")) == nil)
    }

    /// The helper unmaps the libraries it never calls (the Swift runtime, Foundation, …) so that a shim
    /// fork copies a few mappings, not hundreds; its shims are forks of that small address space.
    @Test func theHelperAndItsShimsHoldOnlyTheCLibrary() throws {
        let s = Scratch(); defer { s.remove() }
        let go = s.file("go")
        let id = try Supervisor.launch(s.request(["/bin/sh", "-c", "while [ ! -e '\(go)' ]; do sleep 0.05; done; exit 5"]))
        defer { _ = FileManager.default.createFile(atPath: go, contents: nil); var status: Int32 = 0; _ = waitpid(id.pid, &status, 0) }
        let helper = try #require(Supervisor.spawnHelperPID)
        func objects(_ pid: Int32) throws -> Set<String> {
            let maps = try #require(FileHandle(forReadingAtPath: "/proc/\(pid)/maps")).readDataToEndOfFile()
            return Set(String(decoding: maps, as: UTF8.self).split(separator: "\n").compactMap { line in
                line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(5).first.map(String.init)
            }.filter { $0.hasPrefix("/") })
        }
        // This process maps the Swift runtime; neither the helper nor the shim does.
        #expect(try objects(getpid()).contains { $0.hasSuffix("/libswiftCore.so") })
        for pid in [helper, id.pid] {
            let names = try objects(pid)
            #expect(names.contains { ($0 as NSString).lastPathComponent.hasPrefix("libc.so") })
            #expect(!names.contains { $0.contains("libswift") || $0.contains("libFoundation") }, "pid \(pid) maps \(names.sorted())")
        }
        #expect(FileManager.default.createFile(atPath: go, contents: nil))
        var status: Int32 = 0
        #expect(waitpid(id.pid, &status, 0) == id.pid)
        #expect(Supervisor.readStatus(in: s.file("status")) == .exited(5))
    }
}

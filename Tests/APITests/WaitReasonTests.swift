import Bookend
import Foundation
import TestSupport
import Testing

/// `bookendWaitReason`, the job's `schedulingError`, and the real `bookend` binary's `job wait` and
/// `job why` against a live daemon, with a preparation task that really fails on every node.
@Suite struct WaitReasonTests {
    static let binary = BookendCLI.binary

    func bookend(_ server: LiveServer, _ arguments: [String]) async throws -> BookendCLI.Ran {
        try await BookendCLI.run(server, arguments)
    }

    /// What a failed preparation wrote to stderr reaches the operator's terminal through `job why`
    /// and `job wait`: its escape sequences (a new window title, a cleared screen) are shown, not sent.
    @Test func aPreparationsStderrCannotDriveTheOperatorsTerminal() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build bookend first (swift build)")
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"pool","vmSize":"small","targetDedicatedNodes":1}"#).status == 201)
            let job = try await server.send(.post, "/jobs", body: #"""
                {"id":"esc","poolInfo":{"poolId":"pool"},"jobPreparationTask":{"commandLine":"/bin/sh -c 'printf \"\\033]0;PWNED\\007\\033[2Jboom\\n\" >&2; exit 3'"}}
                """#)
            #expect(job.status == 201, "\(job.text)")
            #expect(try await server.send(.post, "/jobs/esc/tasks", body: #"{"id":"t","commandLine":"/bin/true"}"#).status == 201)
            let waited = try await bookend(server, ["job", "wait", "esc", "--timeout", "120"])
            #expect(waited.status == 5, "\(waited.stdout)\(waited.stderr)")
            let why = try await bookend(server, ["job", "why", "esc"])
            for output in [waited.stderr, why.stdout] {
                #expect(!output.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(output.debugDescription)")
                #expect(output.contains("\\x1B]0;PWNED\\x07\\x1B[2Jboom"), "\(output.debugDescription)")
            }
        }
    }

    @Test func aJobWhosePreparationFailsEverywhereIsExplainedOnTheWireAndByTheCLI() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build bookend first (swift build)")
        try await withServer { server in
            let pool = try await server.send(.post, "/pools", body: #"{"id":"pool","vmSize":"small","targetDedicatedNodes":2,"taskSlotsPerNode":1}"#)
            #expect(pool.status == 201, "\(pool.text)")
            let job = try await server.send(.post, "/jobs", body: #"""
                {"id":"job","poolInfo":{"poolId":"pool"},"jobPreparationTask":{"commandLine":"/bin/sh -c 'echo boom >&2; exit 3'"}}
                """#)
            #expect(job.status == 201, "\(job.text)")
            for id in ["t1", "t2"] {
                let task = try await server.send(.post, "/jobs/job/tasks", body: #"{"id":"\#(id)","commandLine":"/bin/true"}"#)
                #expect(task.status == 201, "\(task.text)")
            }
            // `job wait` itself is what must notice: it starts while the preparation is still running or queued.
            let waited = try await bookend(server, ["job", "wait", "job", "--timeout", "120"])
            #expect(waited.status == 5, "\(waited.stdout)\(waited.stderr)")
            #expect(waited.stderr.contains("JobPreparationTaskFailed"))
            #expect(waited.stderr.contains("exit code 3"))
            #expect(waited.stderr.contains("stderr: boom"))
            let nodes = try await server.engine.nodes(poolID: "pool").map(\.id)
            #expect(nodes.count == 2)
            for node in nodes { #expect(waited.stderr.contains("node \(node): exit code 3")) }

            // On the wire: Azure's schedulingError for SDKs, and Bookend's extension property.
            let got = try await server.send(.get, "/jobs/job")
            #expect(got.status == 200)
            let reason = try #require(got.json["bookendWaitReason"] as? [String: Any])
            #expect(reason["state"] as? String == "blocked")
            #expect(reason["code"] as? String == "JobPreparationTaskFailed")
            let failures = try #require(reason["failedPreparations"] as? [[String: Any]])
            #expect(Set(failures.compactMap { $0["nodeId"] as? String }) == Set(nodes))
            #expect(failures.allSatisfy { ($0["exitCode"] as? NSNumber)?.intValue == 3 && $0["stderrTail"] as? String == "boom" })
            let schedulingError = try #require((got.json["executionInfo"] as? [String: Any])?["schedulingError"] as? [String: Any])
            #expect(schedulingError["category"] as? String == "usererror")
            #expect(schedulingError["code"] as? String == "JobPreparationTaskFailed")
            let details = schedulingError["details"] as? [[String: String]] ?? []
            #expect(details.filter { $0["name"] == "NodeId" }.compactMap { $0["value"] }.sorted() == nodes.sorted())
            #expect(details.filter { $0["name"] == "StderrTail" }.allSatisfy { $0["value"] == "boom" })
            // Tasks keep Azure's `active` state and explain themselves.
            let task = try await server.send(.get, "/jobs/job/tasks/t1")
            #expect(task.json["state"] as? String == "active")
            #expect((task.json["bookendWaitReason"] as? [String: Any])?["code"] as? String == "JobPreparationTaskFailed")

            let why = try await bookend(server, ["job", "why", "job"])
            #expect(why.status == 0, "\(why.stderr)")
            #expect(why.stdout.contains("job job is blocked (JobPreparationTaskFailed)"))
            #expect(why.stdout.contains("stderr: boom"))
            let whyTask = try await bookend(server, ["job", "why", "job", "t2"])
            #expect(whyTask.status == 0, "\(whyTask.stderr)")
            #expect(whyTask.stdout.hasPrefix("task t2 of job job is blocked (JobPreparationTaskFailed)"))
            let missing = try await bookend(server, ["job", "why", "job", "nosuch"])
            #expect(missing.status != 0)
            #expect(missing.stderr.contains("TaskNotFound"))
        }
    }

    @Test func aJobThatFinishesIsNotReportedBlocked() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build bookend first (swift build)")
        try await withServer { server in
            #expect(try await server.send(.post, "/pools", body: #"{"id":"pool","vmSize":"small","targetDedicatedNodes":1,"taskSlotsPerNode":1}"#).status == 201)
            #expect(try await server.send(.post, "/jobs", body: #"{"id":"job","poolInfo":{"poolId":"pool"},"maxParallelTasks":1}"#).status == 201)
            for id in ["t1", "t2", "t3"] {
                #expect(try await server.send(.post, "/jobs/job/tasks", body: #"{"id":"\#(id)","commandLine":"/bin/sh -c 'sleep 0.2'"}"#).status == 201)
            }
            let waited = try await bookend(server, ["job", "wait", "job", "--timeout", "120"])
            #expect(waited.status == 0, "\(waited.stdout)\(waited.stderr)")
            #expect(waited.stdout.contains("3/3 completed"))
            let got = try await server.send(.get, "/jobs/job")
            #expect(got.json["bookendWaitReason"].flatMap { ($0 as? [String: Any])?["state"] as? String } == "notwaiting")
            #expect((got.json["executionInfo"] as? [String: Any])?["schedulingError"] == nil)
            let why = try await bookend(server, ["job", "why", "job", "t1"])
            #expect(why.stdout.hasPrefix("task t1 of job job is not waiting (TaskCompleted)"), "\(why.stdout)\(why.stderr)")
        }
    }
}

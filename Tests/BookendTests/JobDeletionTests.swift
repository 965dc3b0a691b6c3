@testable import Bookend
import Foundation
import TestSupport
import Testing

/// Deleting a job of many tasks: it goes a chunk of tasks per pass (`Engine.jobDeletionChunk`), and
/// when the last chunk is gone the job, its history event and its folders on the nodes go as for a
/// small job.
@Suite struct JobDeletionTests {
    @Test func aJobOfManyTasksIsDeletedInChunksAndLeavesNothing() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            let node = try #require(try await h.pool().first)
            try await h.engine.createJob(JobSpec(id: "big", poolID: "pool"))
            for id in ["r1", "r2", "r3"] { try await h.engine.addTask(jobID: "big", TaskSpec(id: id, commandLine: "/bin/true")) }
            try await h.waitForTasks("big")
            let folder = (node.rootDirectory as NSString).appendingPathComponent("workitems/big")
            #expect(FileManager.default.fileExists(atPath: folder + "/job-1/r1/stdout.txt"))
            // More tasks than one chunk, kept from running; the three that ran come first (by pk), so
            // their executions go with the first chunk, long before the job's row.
            try await h.engine.disableJob(id: "big", disableTasks: "wait")
            try await h.waitForJob("big", .disabled)
            let total = Engine.jobDeletionChunk + Engine.jobDeletionChunk / 2
            var next = 0
            while next < total {
                let specs = (next..<min(next + 100, total)).map { TaskSpec(id: "w\($0)", commandLine: "/bin/true") }
                #expect(try await h.engine.addTasks(jobID: "big", specs).allSatisfy { $0.status == "success" })
                next += specs.count
            }
            // Another job keeps running on the same node meanwhile.
            try await h.engine.createJob(JobSpec(id: "other", poolID: "pool"))
            try await h.engine.deleteJob(id: "big")
            try await h.engine.addTask(jobID: "other", TaskSpec(id: "t", commandLine: "/bin/true"))
            try await h.waitForJobDeletion("big")
            try await h.waitForTasks("other")
            #expect(try await h.engine.task(jobID: "other", taskID: "t").executionInfo.result == "success")
            #expect(try await h.sql("SELECT count(*) FROM task WHERE job_pk NOT IN (SELECT pk FROM job)") == [["0"]])
            #expect(try await h.sql("SELECT count(*) FROM execution WHERE job_pk NOT IN (SELECT pk FROM job)") == [["0"]])
            #expect(try await h.sql("SELECT count(*) FROM task_count WHERE job_pk NOT IN (SELECT pk FROM job)") == [["0"]])
            #expect(try await h.sql("SELECT count(*) FROM event WHERE kind = 'job.deleted' AND job_id = 'big'") == [["1"]])
            try await EngineHarness.waitUntil("the job's folder is gone") { !FileManager.default.fileExists(atPath: folder) }
        }
    }
}

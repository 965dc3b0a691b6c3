import Bookend
import Foundation
import TestSupport
import Testing

/// Client numbers at the edges: durations, deadlines and times beyond what the stored text can
/// hold, and the library's own limits (the daemon's are in APITests/InputLimitTests).
@Suite struct InputBoundsTests {
    /// Durations are read as written: each designator once, in order, and a `T` followed by a time.
    @Test func durationsAreWellFormedOrRefused() throws {
        #expect(try ISODuration.parse("P1DT2H3M4.5S") == 93_784_500)
        #expect(try ISODuration.parse("pt15m") == 900_000)
        #expect(try ISODuration.parse("P1W") == 604_800_000)
        for bad in ["PT1H1H", "PT1S1M", "P1DT", "PT", "P", "P1D1W", "PT1M1H", "P1H", "PT1D", "P1Y", "PT١S", "PTS", "PT1.5.5S"] {
            #expect(throws: ISODuration.ParseError.self, "\(bad)") { try ISODuration.parse(bad) }
        }
    }

    /// Times are read as written: a date the calendar does not have, an hour past 23, a missing zone
    /// or trailing text is no time (not one `timegm` carried over); an offset counts.
    @Test func timestampsAreCalendarDatesAsWritten() {
        #expect(Timestamp.date("2020-02-29T23:59:59.9999999Z") != nil)
        #expect(Timestamp.date("2026-12-06T10:00:00+02:00") == Timestamp.date("2026-12-06T08:00:00Z"))
        #expect(Timestamp.date("2026-12-06T10:00:00-01:30") == Timestamp.date("2026-12-06T11:30:00Z"))
        for bad in ["2020-02-30T00:00:00Z", "2021-02-29T00:00:00Z", "2020-01-01T25:00:00Z", "2020-01-01T00:60:00Z",
                    "2020-13-01T00:00:00Z", "2020-01-00T00:00:00Z", "2020-01-01T00:00:00", "2020-01-01T00:00:00Zjunk",
                    "2020-01-01 00:00:00Z", "2020/01/01T00:00:00Z", "2020-01-01T00:00:00.Z", "2020-01-01T00:00:00+2:00"] {
            #expect(Timestamp.date(bad) == nil, "\(bad)")
        }
    }

    @Test func durationsAtAndBeyondTheLongest() throws {
        #expect(try ISODuration.parse(ISODuration.unlimited) == nil)
        #expect(try ISODuration.parse("P10675199D") == nil)
        #expect(try ISODuration.parse("P10675198D") == 10_675_198 * 86_400_000)
        for text in ["P10675200D", "P99999999999999999999D", "PT" + String(repeating: "9", count: 400) + "S", "P1525029W"] {
            #expect(throws: ISODuration.ParseError.self, "\(text)") { try ISODuration.parse(text) }
            #expect((try? ISODuration.parse(text)) == nil)
        }
    }

    /// The stored time form, written digit by digit, is the text "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"
    /// of gmtime gives, across the whole range it can hold.
    @Test func timestampsAreTheFixedWidthUTCForm() {
        var generator = SystemRandomNumberGenerator()
        let latest: Int64 = 253_402_300_799_999, earliest: Int64 = -62_167_219_200_000  // 9999-12-31T23:59:59.999Z, 0000-01-01T00:00:00.000Z
        let samples: [Int64] = [0, 1, -1, 999, -999, 1_000, latest, earliest, 951_782_400_000]
            + (0..<2_000).map { _ in Int64.random(in: earliest...latest, using: &generator) }
        for milliseconds in samples {
            let (quotient, remainder) = milliseconds.quotientAndRemainder(dividingBy: 1000)
            var time = time_t(remainder < 0 ? quotient - 1 : quotient)
            var parts = tm()
            gmtime_r(&time, &parts)
            let expected = String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                parts.tm_hour, parts.tm_min, parts.tm_sec, Int(remainder < 0 ? remainder + 1000 : remainder))
            // A tenth of a millisecond past the instant, so that rounding down to milliseconds lands on it.
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000 + 0.0001)
            #expect(Timestamp.string(date) == expected, "\(milliseconds)")
        }
    }

    @Test func timesBeyondYear9999AreNeverWrapped() throws {
        #expect(Timestamp.string(Date(timeIntervalSince1970: 1e300)) == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.string(Date(timeIntervalSince1970: -1e300)) == "0000-01-01T00:00:00.000Z")
        #expect(Timestamp.string(Date(timeIntervalSince1970: .infinity)) == "9999-12-31T23:59:59.999Z")
        let now = Date()
        #expect(Timestamp.deadline(after: now, milliseconds: 3_000_000 * 86_400_000) == nil)
        #expect(Timestamp.deadline(after: now, milliseconds: 10_675_198 * 86_400_000) == nil)
        let soon = try #require(Timestamp.deadline(after: now, milliseconds: 60_000))
        #expect(soon > Timestamp.string(now))
        #expect(Timestamp.date(soon).map { abs($0.timeIntervalSince(now) - 60) < 0.01 } == true)
    }

    /// P3000000D (about 8200 years) is within Azure's range but ends past 9999: written as text,
    /// its deadline once sorted before today and killed the task at once. Now it is no deadline.
    @Test func aFarFutureWallClockAndRetentionMeanNoLimit() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            try await h.pool()
            try await h.engine.createJob(JobSpec(id: "job", poolID: "pool"))
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "far", commandLine: "sleep 0.5",
                constraints: TaskConstraints(maxWallClockTime: "P3000000D", retentionTime: "P3000000D")))
            try await h.waitForTasks("job")
            let task = try await h.engine.task(jobID: "job", taskID: "far")
            #expect(task.executionInfo.result == "success", "\(String(describing: task.executionInfo.failureInfo))")
            #expect(task.executionInfo.exitCode == 0)
            #expect(task.constraints.maxWallClockTime == "P3000000D")
            let rows = try await h.sql("SELECT coalesce(deadline, 'none'), coalesce(retention_deadline, 'none') FROM execution WHERE kind = 'task'")
            #expect(rows == [["none", "none"]])
        }
    }

    @Test func libraryCallersGetTheSameLimits() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            func property(_ body: () async throws -> Void) async -> String? {
                do {
                    try await body()
                    return nil
                } catch let error as BookendError {
                    return error.details.first { $0.key == "PropertyName" }?.value
                } catch {
                    return "\(error)"
                }
            }
            #expect(await property { try await h.engine.createPool(PoolSpec(id: "p", targetDedicatedNodes: Int.max)) } == "targetDedicatedNodes")
            var spec = PoolSpec(id: "p", targetDedicatedNodes: 1)
            spec.targetLowPriorityNodes = Int.max
            #expect(await property { try await h.engine.createPool(spec) } == "targetLowPriorityNodes")
            try await h.engine.createPool(PoolSpec(id: "p", targetDedicatedNodes: 0))
            try await h.engine.wait(timeout: .seconds(60)) { engine in try engine.pool(id: "p").allocationState == .steady }
            #expect(await property { try await h.engine.resizePool(id: "p", targetDedicatedNodes: Int.max, targetLowPriorityNodes: 1) } == "targetDedicatedNodes")

            var job = JobSpec(id: "job", poolID: "p")
            job.usesTaskDependencies = true
            try await h.engine.createJob(job)
            let ranges = [TaskIDRange(start: Int.min, end: Int.max)]
            #expect(await property {
                try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "true", dependsOn: TaskDependencies(taskIdRanges: ranges)))
            } == "dependsOn.taskIdRanges[0]")
            #expect(await property { try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "true", requiredSlots: Int.max)) } == "requiredSlots")
            let setuid = [ResourceFile(httpUrl: "http://127.0.0.1:1/x", filePath: "x", fileMode: "4755")]
            #expect(await property { try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "true", resourceFiles: setuid)) } == "resourceFiles[0].fileMode")
            // Ranges that fit are expanded into dependencies.
            try await h.engine.addTask(jobID: "job", TaskSpec(id: "t", commandLine: "true",
                dependsOn: TaskDependencies(taskIdRanges: [TaskIDRange(start: 1, end: 3), TaskIDRange(start: 99_997, end: 99_999)])))
            let rows = try await h.sql("SELECT count(*) FROM task_dependency")
            #expect(rows == [["6"]])
        }
    }
}

import Bookend
import Foundation
import Mustache
import Testing

@testable import Dashboard

/// Templates parse, every user value comes out escaped, and the timeline is laid out from times.
@Suite struct RenderingTests {
    static let hostile = #"<script>alert("x")</script><b id='b'>&amp;"#

    @Test func everyTemplateParsesAndNoneUsesUnescapedOutput() throws {
        _ = try Templates.library()
        for (name, text) in Templates.all {
            #expect(!text.contains("{{{"), "template \(name) outputs unescaped text")
            #expect(!text.contains("{{&"), "template \(name) outputs unescaped text")
            #expect(!text.contains("<script>"), "template \(name) has an inline script")
            #expect(!text.contains("style="), "template \(name) has an inline style the policy would refuse")
        }
    }

    @Test func userTextIsEscapedOnTheTaskPage() throws {
        let library = try Templates.library()
        let page = TaskPage(
            chrome: Chrome(signedIn: true, account: Self.hostile, csrf: "token"), id: Self.hostile, jobId: Self.hostile, jobHref: "/ui/jobs/x",
            displayName: Self.hostile, actions: [], whyHref: "/ui/why", state: "completed", result: "success", node: Self.hostile, exit: "0",
            created: TimeView("2026-01-02T03:04:05.678Z"), started: nil, ended: nil, retries: 0, failure: Self.hostile, commandLine: Self.hostile,
            hasEnvironment: true, environment: [NameValuePair(name: Self.hostile, value: Self.hostile)],
            attempts: [TaskPage.AttemptRow(attempt: 1, nodeId: Self.hostile, outcome: "success", exit: "0", failure: Self.hostile,
                attemptStarted: TimeView("2026-01-02T03:04:05.678Z"), attemptEnded: nil)],
            outputs: [TaskPage.OutputView(name: "stdout", shown: "16 KiB", available: true, text: Self.hostile, href: "/ui/f", size: "1 bytes", missing: "")])
        let html = try #require(library.render(page, withTemplate: "task"))
        #expect(!html.contains("<script>alert"))
        #expect(!html.contains("<b id='b'>"))
        #expect(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;b id=&#39;b&#39;&gt;&amp;amp;"))
        // The only script is the dashboard's own file.
        #expect(html.components(separatedBy: "<script").count == 2)
        #expect(html.contains(#"<script src="/ui/static/dashboard.js" defer></script>"#))
        #expect(html.contains(#"<time datetime="2026-01-02T03:04:05.678Z" title="2026-01-02T03:04:05.678Z">2026-01-02 03:04:05 UTC</time>"#))
    }

    @Test func aMissingEndIsNotTakenFromTheEnclosingPage() throws {
        // Mustache looks names up the context stack; an attempt without an end must not show the task's.
        let library = try Templates.library()
        let page = TaskPage(
            chrome: Chrome(signedIn: true, account: "a", csrf: "t"), id: "t", jobId: "j", jobHref: "/ui/jobs/j", displayName: nil, actions: [],
            whyHref: "/w", state: "running", result: nil, node: "n", exit: "—", created: nil, started: nil,
            ended: TimeView("2030-01-01T00:00:00.000Z"), retries: 0, failure: nil, commandLine: "c", hasEnvironment: false, environment: [],
            attempts: [TaskPage.AttemptRow(attempt: 1, nodeId: "n", outcome: "running", exit: "—", failure: "",
                attemptStarted: TimeView("2026-01-01T00:00:00.000Z"), attemptEnded: nil)],
            outputs: [])
        let html = try #require(library.render(page, withTemplate: "task"))
        #expect(html.components(separatedBy: "2030-01-01T00:00:00.000Z").count == 3)  // the task's own Ended only (datetime and title)
    }

    static func record(_ kind: ExecutionKind, node: String, task: String? = nil, start: String, end: String?, result: ExecutionResult? = .success) -> ExecutionSummary {
        ExecutionSummary(
            kind: kind, poolId: "p", nodeId: node, taskId: task, attempt: 1, state: end == nil ? .running : .completed,
            startTime: start, endTime: end, exitCode: end == nil ? nil : 0, result: end == nil ? nil : result, failureInfo: nil, interrupted: false)
    }

    @Test func theTimelineHasALanePerNodeAndPlacesBarsByTime() throws {
        let executions = [
            Self.record(.preparation, node: "n1", start: "2026-01-01T00:00:00.000Z", end: "2026-01-01T00:00:10.000Z"),
            Self.record(.preparation, node: "n2", start: "2026-01-01T00:00:00.000Z", end: "2026-01-01T00:00:20.000Z"),
            Self.record(.task, node: "n1", task: "a", start: "2026-01-01T00:00:10.000Z", end: "2026-01-01T00:00:50.000Z", result: .failure),
            Self.record(.task, node: "n2", task: "b", start: "2026-01-01T00:00:20.000Z", end: nil),
            Self.record(.release, node: "n1", start: "2026-01-01T00:00:50.000Z", end: "2026-01-01T00:00:50.000Z"),
        ]
        let now = try #require(Timestamp.date("2026-01-01T00:01:40.000Z"))
        let timeline = Timeline(executions: executions, now: now)
        #expect(timeline.lanes.map(\.nodeId) == ["n1", "n2"])
        let n1 = timeline.lanes[0].bars
        #expect(n1.map(\.kind) == [.preparation, .task, .release])
        #expect(n1.map(\.outcome) == ["success", "failure", "success"])
        // 100 s across 1000 units: 10 units a second.
        #expect(n1.map(\.x) == [0, 100, 500])
        #expect(n1.map(\.barWidth) == [100, 400, Timeline.minimumBarWidth])
        // A running bar reaches to now, the end of the axis.
        let running = timeline.lanes[1].bars[1]
        #expect(running.outcome == "running")
        #expect(running.x == 200 && running.barWidth == 800)
    }

    @Test func overlappingRunsOnANodeAreStackedInRows() {
        let executions = [
            Self.record(.task, node: "n", task: "a", start: "2026-01-01T00:00:00.000Z", end: "2026-01-01T00:00:10.000Z"),
            Self.record(.task, node: "n", task: "b", start: "2026-01-01T00:00:05.000Z", end: "2026-01-01T00:00:10.000Z"),
            Self.record(.task, node: "n", task: "c", start: "2026-01-01T00:00:10.000Z", end: "2026-01-01T00:00:20.000Z"),
        ]
        let timeline = Timeline(executions: executions, now: Date(timeIntervalSince1970: 0))
        let lane = Pages.laneView(timeline.lanes[0], jobID: "j", preparationID: "jobpreparation", releaseID: "jobrelease")
        #expect(lane.bars.map(\.y) == [2, 26, 2])
        #expect(lane.height == 48)
    }

    @Test(arguments: [
        (0, 0, 0, 0, [String]()),
        (0, 0, 0, 3, ["active"]),
        (1, 0, 0, 3, ["succeeded", "active"]),
        (2, 1, 1, 0, ["succeeded", "failed", "running"]),
    ])
    func theCountBarHasASegmentPerNonEmptyBucket(succeeded: Int, failed: Int, running: Int, active: Int, buckets: [String]) {
        let bar = CountBar(succeeded: succeeded, failed: failed, running: running, active: active)
        #expect(bar.segments.map(\.bucket) == buckets)
        let total = bar.segments.compactMap { Double($0.width) }.reduce(0, +)
        #expect(buckets.isEmpty ? total == 0 : abs(total - 100) < 0.1)
    }
}

import Bookend
import Foundation

// What the templates are rendered with: plain values, every one already a display string or number.
// Mustache looks a name up the context stack when the innermost value lacks it (or holds nil), so the
// fields of rows nested in a page are named apart from the page's own.

struct Chrome {
    let signedIn: Bool
    let account: String
    let csrf: String
}

/// A stored UTC time: `<time datetime>` for the script to show in the browser's zone, UTC text without it.
struct TimeView {
    let iso: String
    let text: String

    init?(_ stored: String?) {
        guard let stored, !stored.isEmpty else { return nil }
        iso = stored
        let trimmed = stored.count >= 19 ? String(stored.prefix(19)) : stored
        text = trimmed.replacingOccurrences(of: "T", with: " ") + " UTC"
    }
}

struct Counts {
    let active: Int
    let running: Int
    let succeeded: Int
    let failed: Int

    init(_ counts: TaskCountsByState?) {
        active = counts?.active ?? 0
        running = counts?.running ?? 0
        succeeded = counts?.succeeded ?? 0
        failed = counts?.failed ?? 0
    }
}

/// Task counts as one stacked bar (succeeded, failed, running, active), in a 0–100 viewBox.
struct CountBar {
    struct Segment {
        let bucket: String
        let x: String
        let width: String
        let label: String
    }

    let summary: String
    let segments: [Segment]

    init(_ counts: Counts) {
        self.init(succeeded: counts.succeeded, failed: counts.failed, running: counts.running, active: counts.active)
    }

    init(succeeded: Int, failed: Int, running: Int, active: Int) {
        let buckets = [("succeeded", succeeded), ("failed", failed), ("running", running), ("active", active)]
        let total = buckets.reduce(0) { $0 + $1.1 }
        summary = buckets.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
        var segments: [Segment] = []
        var x = 0.0
        for (bucket, count) in buckets where count > 0 && total > 0 {
            let width = Double(count) / Double(total) * 100
            segments.append(Segment(bucket: bucket, x: Format.number(x), width: Format.number(width), label: "\(count) \(bucket)"))
            x += width
        }
        self.segments = segments
    }
}

enum Format {
    /// Coordinates with two decimals at most: enough for a 1000-unit axis, short in the page.
    static func number(_ value: Double) -> String {
        let rounded = (value * 100).rounded() / 100
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
    }

    static func optional(_ value: Int?) -> String {
        value.map(String.init) ?? "—"
    }

    static func failure(_ info: FailureInfo?) -> String {
        guard let info else { return "" }
        return [info.code, info.message ?? ""].filter { !$0.isEmpty }.joined(separator: ": ")
    }

    static func bytes(_ count: Int64) -> String {
        if count < 1024 { return "\(count) bytes" }
        if count < 1024 * 1024 { return "\(Format.number(Double(count) / 1024)) KiB" }
        return "\(Format.number(Double(count) / 1024 / 1024)) MiB"
    }

    static func milliseconds(_ date: Date?) -> String {
        guard let date else { return "" }
        return String(Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    static func nonEmpty(_ text: String?) -> String? {
        guard let text, !text.isEmpty else { return nil }
        return text
    }
}

/// Where each page lives; every id is percent-encoded as one path segment.
enum Links {
    static let root = "/ui"
    static func pool(_ poolID: String) -> String { "/ui/pools/\(Web.segment(poolID))" }
    static func job(_ jobID: String) -> String { "/ui/jobs/\(Web.segment(jobID))" }
    static func task(_ jobID: String, _ taskID: String) -> String { "\(job(jobID))/tasks/\(Web.segment(taskID))" }
    static func taskFile(_ jobID: String, _ taskID: String, _ path: String) -> String { "\(task(jobID, taskID))/files/\(Web.filePath(path))" }
    static func nodeFile(_ poolID: String, _ nodeID: String, _ path: String) -> String {
        "\(pool(poolID))/nodes/\(Web.segment(nodeID))/files/\(Web.filePath(path))"
    }
}

struct SignInPage {
    let chrome: Chrome
    let message: String?
    let formToken: String
    let next: String
    let account: String
}

struct ProblemPage {
    let chrome: Chrome
    let heading: String
    let message: String
}

struct StateCount {
    let state: String
    let count: Int
}

struct OverviewPage {
    struct PoolRow {
        let href: String
        let id: String
        let displayName: String?
        let state: String
        let allocationState: String
        let nodeStates: [StateCount]
        let nodes: Int
        let slots: Int
    }

    struct JobRow {
        let href: String
        let id: String
        let displayName: String?
        let poolId: String
        let state: String
        let created: TimeView?
        let bar: CountBar
        let counts: Counts
    }

    let chrome: Chrome
    let pools: [PoolRow]
    let jobs: [JobRow]
}

struct PoolPage {
    struct NodeRow {
        let id: String
        let state: String
        let scheduling: String
        let running: Int
        let slotsUsed: Int
        let slots: Int
        let tasksRun: Int
        let tasksSucceeded: Int
        let since: TimeView?
    }

    let chrome: Chrome
    let id: String
    let displayName: String?
    let state: String
    let allocationState: String
    let current: Int
    let target: Int
    let slots: Int
    let created: TimeView?
    let nodes: [NodeRow]
}

struct ActionLink {
    let name: String
    let label: String
    let href: String
    let style: String
}

struct Option {
    let value: String
    let label: String
    let selected: Bool
}

/// The job page's parts that the live endpoint renders again while the job runs.
struct JobLive {
    struct PrepRow {
        let nodeId: String
        let poolHref: String
        let prepState: String
        /// `success` or `failure` once the preparation has completed.
        let prepResult: String?
        let prepExit: String
        let prepStart: TimeView?
        let prepEnd: TimeView?
        let prepRetries: Int
        let prepStdout: String
        let prepStderr: String
        let hasRelease: Bool
        let releaseState: String
        let releaseResult: String?
        let releaseExit: String
        let releaseStart: TimeView?
        let releaseEnd: TimeView?
        let releaseStdout: String
        let releaseStderr: String
    }

    struct LaneView {
        struct BarView {
            let href: String
            let kind: String
            let taskId: String
            let outcome: String
            let startMs: String
            let endMs: String
            let x: String
            let y: Int
            let width: String
            let barHeight: Int
            let title: String
        }

        let nodeId: String
        let poolHref: String
        let height: Int
        let pixelHeight: Int
        let bars: [BarView]
    }

    struct TaskRow {
        let href: String
        let id: String
        let state: String
        let result: String?
        let node: String
        let exit: String
        let taskStarted: TimeView?
        let taskEnded: TimeView?
        let retries: Int
        let commandLine: String
    }

    let counts: Counts
    let bar: CountBar
    let nodes: [PrepRow]
    let startMs: String
    let endMs: String
    let hasLanes: Bool
    let startTime: TimeView?
    let endTime: TimeView?
    let lanes: [LaneView]
    let truncated: Bool
    let timelineTasks: Int
    let tasks: [TaskRow]
    let filtered: Bool
    let firstHref: String?
    let nextHref: String?
}

struct JobPage {
    let chrome: Chrome
    let id: String
    let href: String
    let displayName: String?
    let liveURL: String?
    let liveState: String
    let actions: [ActionLink]
    let whyHref: String
    let state: String
    let poolId: String
    let poolHref: String
    let created: TimeView?
    let started: TimeView?
    let ended: TimeView?
    let terminateReason: String?
    let priority: Int
    let hasPreparation: Bool
    let stateOptions: [Option]
    let live: JobLive
}

struct TaskPage {
    struct AttemptRow {
        let attempt: Int
        let nodeId: String
        let outcome: String
        let exit: String
        let failure: String
        let attemptStarted: TimeView?
        let attemptEnded: TimeView?
    }

    struct OutputView {
        let name: String
        let shown: String
        let available: Bool
        let text: String
        let href: String
        let size: String
        let missing: String
    }

    let chrome: Chrome
    let id: String
    let jobId: String
    let jobHref: String
    let displayName: String?
    let actions: [ActionLink]
    let whyHref: String
    let state: String
    let result: String?
    let node: String
    let exit: String
    let created: TimeView?
    let started: TimeView?
    let ended: TimeView?
    let retries: Int
    let failure: String?
    let commandLine: String
    let hasEnvironment: Bool
    let environment: [NameValuePair]
    let attempts: [AttemptRow]
    let outputs: [OutputView]
}

struct WhyPage {
    struct FailureRow {
        let nodeId: String
        let exit: String
        let failure: String
        let stderr: String
    }

    let chrome: Chrome
    let subject: String
    let jobId: String
    let jobHref: String
    let taskId: String?
    let taskHref: String
    let state: String
    let code: String
    let message: String
    let meaning: String
    let dependencyId: String?
    let dependencyHref: String
    let hasFailures: Bool
    let failures: [FailureRow]
}

struct ConfirmPage {
    let chrome: Chrome
    let label: String
    let subject: String
    let explanation: String
    let backHref: String
    let actionHref: String
    let style: String
    let hasChoices: Bool
    let choiceLabel: String
    let choices: [Option]
}

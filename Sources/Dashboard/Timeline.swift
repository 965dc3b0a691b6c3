import Bookend
import Foundation

/// The job page's timeline: one lane per node, a bar per preparation, task and release run, placed
/// on a shared time axis. Pure layout (times in, coordinates out), so its rules are tested without a
/// browser; the template turns it into SVG, whose `x`/`width` attributes are not styles and so pass
/// the dashboard's Content-Security-Policy.
struct Timeline: Sendable, Hashable {
    /// The SVG's user-space width the bars are laid out in.
    static let width = 1000.0
    static let laneHeight = 30
    /// A bar this narrow is still visible and clickable.
    static let minimumBarWidth = 3.0

    struct Bar: Sendable, Hashable {
        var kind: ExecutionKind
        var taskId: String?
        var attempt: Int
        /// `success`, `failure`, `running` or `interrupted`: the bar's colour.
        var outcome: String
        var start: Date
        /// Nil while the run goes on: the bar reaches to `end` of the axis.
        var end: Date?
        var x: Double
        var barWidth: Double
        var exitCode: Int?
    }

    struct Lane: Sendable, Hashable {
        var poolId: String
        var nodeId: String
        var bars: [Bar]
    }

    var start: Date
    var end: Date
    var lanes: [Lane]

    /// Lays out `executions` between the first start and the last end (or `now` while any runs).
    /// Lanes are in the order nodes first appear; bars in start order.
    init(executions: [ExecutionSummary], now: Date) {
        let starts = executions.compactMap { Timestamp.date($0.startTime) }
        let ends = executions.map { record in record.endTime.flatMap(Timestamp.date) ?? max(now, Timestamp.date(record.startTime) ?? now) }
        let first = starts.min() ?? now
        var last = ends.max() ?? now
        // A job whose runs all took no measurable time still needs an axis to draw on.
        if last.timeIntervalSince(first) < 1 { last = first.addingTimeInterval(1) }
        start = first
        end = last
        let span = last.timeIntervalSince(first)
        var lanes: [Lane] = []
        var laneIndex: [String: Int] = [:]
        for record in executions {
            guard let began = Timestamp.date(record.startTime) else { continue }
            let finished = record.endTime.flatMap(Timestamp.date)
            let x = began.timeIntervalSince(first) / span * Timeline.width
            let right = (finished ?? last).timeIntervalSince(first) / span * Timeline.width
            let barWidth = min(max(right - x, Timeline.minimumBarWidth), max(Timeline.width - x, Timeline.minimumBarWidth))
            let bar = Bar(
                kind: record.kind, taskId: record.taskId, attempt: record.attempt, outcome: Timeline.outcome(record),
                start: began, end: finished, x: x, barWidth: barWidth, exitCode: record.exitCode)
            let key = "\(record.poolId)\n\(record.nodeId)"
            if let index = laneIndex[key] {
                lanes[index].bars.append(bar)
            } else {
                laneIndex[key] = lanes.count
                lanes.append(Lane(poolId: record.poolId, nodeId: record.nodeId, bars: [bar]))
            }
        }
        self.lanes = lanes
    }

    static func outcome(_ record: ExecutionSummary) -> String {
        switch record.state {
        case .starting, .running: return "running"
        case .completed:
            if record.interrupted { return "interrupted" }
            switch record.result {
            case .success: return "success"
            case .failure: return "failure"
            case nil: return "interrupted"
            }
        }
    }
}

import Bookend
import Foundation

/// Wall-clock nanoseconds since the epoch: the clock `bench-stamp` prints, so the two can be subtracted.
func wallNanoseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
}

/// Seconds on a monotonic clock, for durations measured inside this process.
func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

func elapsed(_ body: () throws -> Void) rethrows -> Double {
    let start = monotonicSeconds()
    try body()
    return monotonicSeconds() - start
}

func elapsed(_ body: () async throws -> Void) async rethrows -> Double {
    let start = monotonicSeconds()
    try await body()
    return monotonicSeconds() - start
}

/// The q-quantile (0...1) of a sample, nearest-rank.
func quantile(_ values: [Double], _ q: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

func median(_ values: [Double]) -> Double { quantile(values, 0.5) }

/// Resident set size of a process, in bytes (`VmRSS`), or its peak (`VmHWM`).
func residentBytes(pid: Int32, field: String = "VmRSS") -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        let digits = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        return digits * 1024
    }
    return 0
}

/// One row of the report: a figure, the baseline it is read against (if any), and the target.
struct Figure: Codable {
    var section: String
    var name: String
    var value: Double
    var unit: String
    var baseline: Double?
    var baselineName: String?
    var target: String?
    var note: String?

    /// value ÷ baseline, when both are rates or both are times.
    var ratio: Double? {
        guard let baseline, baseline != 0 else { return nil }
        return value / baseline
    }
}

final class Report: @unchecked Sendable {
    // Touched only from the benchmark's main flow.
    private(set) var figures: [Figure] = []
    var environment: [String: String] = [:]

    func add(_ figure: Figure) {
        figures.append(figure)
        print("  " + Report.line(figure))
        fflush(nil)
    }

    static func format(_ value: Double, _ unit: String) -> String {
        if value.isNaN { return "n/a" }
        switch unit {
        case "ms", "s": return value >= 100 ? String(format: "%.0f %@", value, unit) : String(format: "%.2f %@", value, unit)
        case "MB": return String(format: "%.1f MB", value)
        default: return value >= 100 ? String(format: "%.0f %@", value, unit) : String(format: "%.2f %@", value, unit)
        }
    }

    static func line(_ f: Figure) -> String {
        var text = "\(f.name): \(format(f.value, f.unit))"
        if let baseline = f.baseline, let name = f.baselineName {
            text += "  (baseline \(name): \(format(baseline, f.unit)); ratio \(String(format: "%.2f", f.ratio ?? .nan)))"
        }
        if let target = f.target { text += "  [target \(target)]" }
        return text
    }

    func table() -> String {
        var rows: [[String]] = [["section", "figure", "value", "baseline (same run)", "ratio", "target"]]
        for f in figures {
            rows.append([
                f.section, f.name, Report.format(f.value, f.unit),
                f.baseline.map { "\(f.baselineName ?? ""): \(Report.format($0, f.unit))" } ?? "",
                f.ratio.map { String(format: "%.2f", $0) } ?? "", f.target ?? "",
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        func render(_ row: [String]) -> String {
            "| " + zip(row, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: " | ") + " |"
        }
        var lines = [render(rows[0]), "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"]
        lines += rows.dropFirst().map(render)
        return lines.joined(separator: "\n")
    }

    func json() throws -> Data {
        struct Document: Codable { var environment: [String: String]; var figures: [Figure] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        // A figure that was not measured (no SDK venv, a section skipped) is NaN; JSON has no NaN.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return try encoder.encode(Document(environment: environment, figures: figures))
    }
}

/// `root/name`, emptied (or created) for one benchmark.
func emptyDirectory(_ name: String, under root: String) throws -> String {
    let directory = (root as NSString).appendingPathComponent(name)
    discardScratch(directory)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
}

/// Puts aside a data directory a benchmark is done with; `removeDiscardedScratch` deletes them all
/// when the run ends. Deleting at once made the next section slower for reasons that are not
/// Bookend's: on ext4 without a journal, making inodes slows for minutes after many were freed (the
/// allocator steps over recently deleted ones), and one throughput run frees some 60,000 (five per
/// task). The latency section run right after the throughput section measured 4.6 ms instead of 3.
func discardScratch(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0 else { return }
    let bin = discardedScratchFolder(under: Paths.parent(of: path))
    mkdir(bin, 0o700)
    let target = (bin as NSString).appendingPathComponent(UUID().uuidString)
    if rename(path, target) != 0 { try? FileManager.default.removeItem(atPath: path) }
}

func removeDiscardedScratch(under root: String) {
    try? FileManager.default.removeItem(atPath: discardedScratchFolder(under: root))
}

private func discardedScratchFolder(under parent: String) -> String {
    (parent as NSString).appendingPathComponent(".discarded")
}

/// A TCP socket connected to 127.0.0.1:`port`, or the errno of the failure.
func connectLoopback(port: Int) -> Result<Int32, BenchError> {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return .failure(BenchError("socket: \(String(cString: strerror(errno)))")) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else {
        let message = String(cString: strerror(errno))
        close(fd)
        return .failure(BenchError("connect to 127.0.0.1:\(port): \(message)"))
    }
    return .success(fd)
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import Logging

/// `--log-format text` (the default): one line per event on stderr, in the layout of swift-log's
/// `StreamLogHandler` (`<time> <level> <label>: <key=value ...> [<source>] <message>`), so existing
/// log readers see no change.
///
/// Why not `StreamLogHandler` itself: it formats its whole metadata again every time one key is set,
/// and the HTTP server sets a request id on the logger of every request. Under 16 clients doing
/// `GET job` that was 1.7 % of the daemon's CPU (`perf record`, 2026-12-04; 0.5 % with this handler),
/// for lines that at the default level are never written. Here metadata is formatted only when a
/// line is.
///
/// As in `JSONLogHandler`, metadata whose key names a secret is written as `[redacted]`.
struct TextLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        logLevel = level
        self.metadataProvider = metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var line = Self.timestamp()
        line += " \(event.level)"
        if !label.isEmpty { line += " " + label }
        line += ":"
        let pretty = Self.prettify(effectiveMetadata(event))
        if !pretty.isEmpty { line += " " + pretty }
        line += " [\(event.source)] \(event.message)\n"
        LogLine.write(Array(line.utf8))
    }

    /// The merged metadata (`LogLine.metadata`) with the event's error, as `StreamLogHandler` adds it.
    func effectiveMetadata(_ event: LogEvent) -> Logger.Metadata {
        var merged = LogLine.metadata(metadata, metadataProvider, event)
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        return merged
    }

    /// `key=value` pairs sorted by key, secrets redacted; empty for no metadata.
    static func prettify(_ metadata: Logger.Metadata) -> String {
        metadata.sorted { $0.key < $1.key }
            .map { "\($0.key)=\(JSONLogHandler.isSecret($0.key) ? "[redacted]" : "\($0.value)")" }
            .joined(separator: " ")
    }

    /// Local time to the second with its UTC offset, as `StreamLogHandler` writes it.
    static func timestamp() -> String {
        var now = time(nil)
        var local = tm()
        guard localtime_r(&now, &local) != nil else { return "<unknown>" }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

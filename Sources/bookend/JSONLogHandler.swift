import Foundation
import Logging

/// `--log-format json`: one JSON object per line on stderr, for log shippers (journald, Loki,
/// Elasticsearch) that parse fields instead of text. Keys: `time` (RFC 3339, UTC, milliseconds),
/// `level`, `label`, `message`, and the metadata as strings. Metadata whose key names a secret
/// (`key`, `authorization`, `password`, `secret`, `token`) is replaced by `"[redacted]"`: Bookend never
/// logs its account key or request signatures, and this keeps a future log line from doing so by accident.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String, level: Logger.Level) {
        self.label = label
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var object: [String: String] = [:]
        for (key, value) in LogLine.metadata(metadata, metadataProvider, event) {
            object[key] = JSONLogHandler.isSecret(key) ? "[redacted]" : "\(value)"
        }
        object["time"] = JSONLogHandler.timestamp()
        object["level"] = event.level.rawValue
        object["label"] = label
        object["message"] = "\(event.message)"
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        line.append(UInt8(ascii: "\n"))
        LogLine.write(line)
    }

    static func isSecret(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return ["key", "authorization", "password", "secret", "token"].contains { lowered == $0 || lowered.hasSuffix("-" + $0) || lowered.hasSuffix("_" + $0) }
    }

    static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }
}

import Foundation
import Logging

/// What the daemon's two log handlers (`TextLogHandler`, `JSONLogHandler`) do alike: gather an event's
/// metadata and write its line.
enum LogLine {
    /// The handler's metadata, then the provider's, then the event's own, later ones winning.
    static func metadata(_ handler: Logger.Metadata, _ provider: Logger.MetadataProvider?, _ event: LogEvent) -> Logger.Metadata {
        var merged = handler
        if let provided = provider?.get(), !provided.isEmpty { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata, !extra.isEmpty { merged.merge(extra) { _, new in new } }
        return merged
    }

    /// Writes one line to stderr with one write(2), so lines from concurrent loggers never interleave.
    static func write<Bytes: ContiguousBytes>(_ line: Bytes) {
        line.withUnsafeBytes { _ = Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}

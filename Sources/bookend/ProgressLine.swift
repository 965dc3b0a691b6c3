import Foundation

/// One line of progress on stderr for a command that takes a while (`task add --json` with many
/// tasks), redrawn in place on a terminal. On anything else it prints nothing, so scripts and pipes
/// see exactly the output they always did (`job wait`, which prints its progress as its output,
/// keeps its own).
struct ProgressLine {
    let enabled: Bool

    init(enabled: Bool = isatty(STDERR_FILENO) == 1) {
        self.enabled = enabled
    }

    func show(_ text: String) {
        guard enabled else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
    }

    /// Clears the line, so the command's result starts at the left margin.
    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

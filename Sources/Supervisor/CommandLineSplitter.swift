/// Splits an Azure Batch command line into argv. Azure Batch runs command lines without a
/// shell, so this is POSIX shell word splitting with no expansion of any kind:
/// - space, tab, newline (and CR) separate words;
/// - '...' is literal;
/// - "..." groups; inside it a backslash escapes only `"` `\` `$` `` ` `` and newline
///   (backslash-newline is removed, as in sh); other backslashes stay literal;
/// - outside quotes a backslash escapes the next character (backslash-newline is removed);
/// - unterminated quotes, a trailing lone backslash and empty/blank lines are errors.
public enum CommandLineSplitter {
    public static func split(_ line: String) throws(SupervisorError) -> [String] {
        enum Mode { case plain, single, double }
        var words: [String] = []
        var word = ""
        var inWord = false  // distinguishes an empty quoted word ('') from no word
        var mode = Mode.plain
        var chars = line.unicodeScalars.makeIterator()

        func fail(_ message: String) -> SupervisorError {
            SupervisorError(code: .invalidCommandLine, message: message)
        }

        while let c = chars.next() {
            switch mode {
            case .plain:
                switch c {
                case " ", "\t", "\n", "\r":
                    if inWord { words.append(word); word = ""; inWord = false }
                case "'":
                    mode = .single; inWord = true
                case "\"":
                    mode = .double; inWord = true
                case "\\":
                    guard let next = chars.next() else { throw fail("command line ends with a lone backslash") }
                    if next != "\n" { word.unicodeScalars.append(next); inWord = true }
                default:
                    word.unicodeScalars.append(c); inWord = true
                }
            case .single:
                if c == "'" { mode = .plain } else { word.unicodeScalars.append(c) }
            case .double:
                switch c {
                case "\"":
                    mode = .plain
                case "\\":
                    guard let next = chars.next() else { throw fail("unterminated double quote") }
                    switch next {
                    case "\"", "\\", "$", "`": word.unicodeScalars.append(next)
                    case "\n": break
                    default: word.unicodeScalars.append(c); word.unicodeScalars.append(next)
                    }
                default:
                    word.unicodeScalars.append(c)
                }
            }
        }
        switch mode {
        case .single: throw fail("unterminated single quote")
        case .double: throw fail("unterminated double quote")
        case .plain: break
        }
        if inWord { words.append(word) }
        guard !words.isEmpty else { throw fail("empty command line") }
        return words
    }
}

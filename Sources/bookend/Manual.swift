import ArgumentParser
import Foundation

/// `bookend generate-manual`: the man page (bookend.1, roff) built from the command tree, so it says
/// exactly what `--help` says. (swift-argument-parser's manual plugin needs a package plugin run;
/// this works from the installed binary, which is what `make install` calls.)
struct GenerateManual: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-manual",
        abstract: "Print the bookend(1) man page (roff) generated from the command tree.")

    @Option(help: "The date shown in the page footer (default: today, UTC).")
    var date: String?

    func run() throws {
        print(Manual.page(root: BookendCommand.self, date: date ?? Manual.today()), terminator: "")
    }
}

enum Manual {
    static func page(root: any ParsableCommand.Type, date: String) -> String {
        let name = root._commandName
        var out = ".TH \(escape(name.uppercased())) 1 \"\(escape(date))\" \"Bookend\" \"User Commands\"\n"
        out += ".SH NAME\n\(escape(name)) \\- \(escape(root.configuration.abstract))\n"
        out += ".SH SYNOPSIS\n.B \(escape(name))\n.I command\n[\n.I options\n]\n"
        out += ".SH DESCRIPTION\n"
        out += verbatim(root.helpMessage(for: root, includeHidden: false, columns: 100))
        out += ".SH COMMANDS\n"
        for (path, command) in commands(below: root, path: [name]) {
            out += ".SS \(escape(path.joined(separator: " ")))\n"
            out += verbatim(root.helpMessage(for: command, includeHidden: false, columns: 100))
        }
        out += ".SH SHELL COMPLETION\n"
        out += "Completion scripts come from\n.B bookend \\-\\-generate\\-completion\\-script\n.IR bash | zsh | fish .\n"
        out += ".SH SEE ALSO\nThe documentation in docs/ (operations.md: install, the systemd unit, metrics, logs).\n"
        return out
    }

    /// Every subcommand, depth first, with the words that invoke it.
    static func commands(below command: any ParsableCommand.Type, path: [String]) -> [([String], any ParsableCommand.Type)] {
        var result: [([String], any ParsableCommand.Type)] = []
        for sub in command.configuration.subcommands {
            let subPath = path + [sub._commandName]
            result.append((subPath, sub))
            result += commands(below: sub, path: subPath)
        }
        return result
    }

    /// Help text as a no-fill block, so its columns survive; roff's escape and control characters are quoted.
    static func verbatim(_ text: String) -> String {
        var out = ".nf\n"
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            out += "\\&" + escape(String(line)) + "\n"
        }
        return out + ".fi\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
    }

    static func today() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: Date())
    }
}

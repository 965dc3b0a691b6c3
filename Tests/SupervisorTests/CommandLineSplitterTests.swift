import Testing
@testable import Supervisor

@Suite struct CommandLineSplitterTests {
    static let good: [(String, [String])] = [
        ("/bin/echo hello", ["/bin/echo", "hello"]),
        ("  a   b\tc\nd  ", ["a", "b", "c", "d"]),
        (#"/bin/sh -c 'echo "hi there"; exit 3'"#, ["/bin/sh", "-c", #"echo "hi there"; exit 3"#]),
        (#"say "hello world""#, ["say", "hello world"]),
        (#"a 'b c'd"e f"g"#, ["a", "b cde fg"]),
        (#"x '' """#, ["x", "", ""]),
        (#"a\ b"#, ["a b"]),
        (#"a\\b \'q"#, [#"a\b"#, "'q"]),
        (#""a\"b\\c\$d\`e\nf""#, [#"a"b\c$d`e\nf"#]),
        (#"'single \ stays' "#, [#"single \ stays"#]),
        ("echo $HOME ~ *.txt", ["echo", "$HOME", "~", "*.txt"]),
        ("\"multi\nline\"", ["multi\nline"]),
        ("a\\\nb", ["ab"]),
        ("\"a\\\nb\"", ["ab"]),
        ("cmd.exe /c \"dir\"", ["cmd.exe", "/c", "dir"]),
    ]

    @Test(arguments: good)
    func splits(_ line: String, _ expected: [String]) throws {
        #expect(try CommandLineSplitter.split(line) == expected)
    }

    static let bad: [String] = ["", "   \t\n", "echo 'unterminated", #"echo "unterminated"#, #"echo "a\""#, "trailing \\"]

    @Test(arguments: bad)
    func rejects(_ line: String) {
        #expect(throws: SupervisorError.self) { try CommandLineSplitter.split(line) }
        do {
            _ = try CommandLineSplitter.split(line)
        } catch {
            #expect(error.code == .invalidCommandLine)
        }
    }
}

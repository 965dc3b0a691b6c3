/// Path text without Foundation's `NSString.deletingLastPathComponent`, which traps (SIGILL, the
/// whole process) on a path whose only component is one character: `d`, `.`, `x/` (swift-corelibs-
/// foundation as shipped with Swift 6.3 on Linux). Such paths are what people type: `bookend serve
/// --data-dir .`, `--key-file k`, `backup --to b`. So every parent of a path Bookend is given is
/// taken here.
public enum Paths {
    /// The path without its last component, as `deletingLastPathComponent` answers it where it does
    /// not trap: `""` for a lone component (`d`, `d/`, `.`), `/` for one beneath the root (`/d`),
    /// `a` for `a/b` and `a/b/`; trailing and repeated slashes ignored. `""` and `/` are their own.
    public static func parent(of path: String) -> String {
        var text = Substring(path)
        while text.count > 1, text.hasSuffix("/") { text = text.dropLast() }
        guard text != "/" else { return "/" }
        guard let slash = text.lastIndex(of: "/") else { return "" }
        var parent = text[..<slash]
        while parent.hasSuffix("/") { parent = parent.dropLast() }
        return parent.isEmpty ? "/" : String(parent)
    }

    /// The folder that holds `path`, to open: its parent, or `.` for a lone component.
    public static func folder(containing path: String) -> String {
        let parent = parent(of: path)
        return parent.isEmpty ? "." : parent
    }
}

import Bookend
import Foundation

/// The `$filter` subset of §8.1, evaluated over an entity's wire JSON.
indirect enum ODataFilter: Sendable {
    case and(ODataFilter, ODataFilter)
    case or(ODataFilter, ODataFilter)
    case not(ODataFilter)
    case compare(path: [String], op: String, literal: Literal)
    case startsWith(path: [String], prefix: String)

    enum Literal: Sendable {
        case string(String), number(Double), bool(Bool), null
    }

    /// Longest `$filter` text, in UTF-8 bytes: well above what the SDKs build, far below what could
    /// make parsing or matching every listed entity costly.
    static let maxLength = 4096
    /// Deepest nesting of parentheses and `not`: the parser and `matches` recurse once per level,
    /// so without a bound `((((…` would overflow the stack and end the process.
    static let maxDepth = 32
    /// Most comparisons (and `startswith` calls) in one filter; `and`/`or` chains nest one level per term.
    static let maxTerms = 100

    /// Parses `text`, allowing only `properties` (paths with `/`; names case-sensitive as on the wire).
    static func parse(_ text: String, properties: Set<String>) throws -> ODataFilter {
        guard text.utf8.count <= maxLength else {
            throw APIErrors.invalidQuery("$filter", String(text.prefix(64)) + "…", "at most \(maxLength) bytes")
        }
        var parser = Parser(tokens: try tokenize(text), properties: properties, text: text)
        let filter = try parser.expression()
        guard parser.index == parser.tokens.count else { throw parser.failure("unexpected text after the expression") }
        return filter
    }

    func matches(_ object: [String: JSONValue]) -> Bool {
        switch self {
        case .and(let a, let b): a.matches(object) && b.matches(object)
        case .or(let a, let b): a.matches(object) || b.matches(object)
        case .not(let a): !a.matches(object)
        case .startsWith(let path, let prefix):
            if case .string(let value)? = ODataFilter.value(at: path, in: object) {
                value.lowercased().hasPrefix(prefix.lowercased())
            } else {
                false
            }
        case .compare(let path, let op, let literal):
            ODataFilter.compare(ODataFilter.value(at: path, in: object), op, literal)
        }
    }

    static func value(at path: [String], in object: [String: JSONValue]) -> JSONValue? {
        var current: JSONValue = .object(object)
        for name in path {
            guard case .object(let dictionary) = current, let next = dictionary[name] else { return nil }
            current = next
        }
        return current
    }

    static func compare(_ value: JSONValue?, _ op: String, _ literal: Literal) -> Bool {
        let ordering: ComparisonResult?
        switch (value, literal) {
        case (nil, .null), (.null?, .null): ordering = .orderedSame
        case (nil, _), (.null?, _), (_, .null): ordering = nil
        case (.string(let a)?, .string(let b)):
            if let x = Timestamp.date(a), let y = Timestamp.date(b) {
                ordering = x == y ? .orderedSame : (x < y ? .orderedAscending : .orderedDescending)
            } else {
                ordering = a.lowercased().compare(b.lowercased())
            }
        case (.string(let a)?, .number(let b)):
            // int64 values are strings on the wire.
            ordering = Double(a).map { $0 == b ? .orderedSame : ($0 < b ? .orderedAscending : .orderedDescending) }
        case (.number(let a)?, .number(let b)): ordering = a == b ? .orderedSame : (a < b ? .orderedAscending : .orderedDescending)
        case (.bool(let a)?, .bool(let b)): ordering = a == b ? .orderedSame : .orderedAscending
        default: ordering = nil
        }
        guard let ordering else { return op == "ne" }
        switch op {
        case "eq": return ordering == .orderedSame
        case "ne": return ordering != .orderedSame
        case "gt": return ordering == .orderedDescending
        case "ge": return ordering != .orderedAscending
        case "lt": return ordering == .orderedAscending
        case "le": return ordering != .orderedDescending
        default: return false
        }
    }

    // MARK: Lexer and parser

    enum Token: Equatable {
        case word(String), string(String), number(Double), open, close, comma
    }

    static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        let characters = Array(text)
        var index = 0
        func fail(_ why: String) -> BookendError { APIErrors.invalidQuery("$filter", text, why) }
        while index < characters.count {
            let character = characters[index]
            if character.isWhitespace {
                index += 1
            } else if character == "(" {
                tokens.append(.open)
                index += 1
            } else if character == ")" {
                tokens.append(.close)
                index += 1
            } else if character == "," {
                tokens.append(.comma)
                index += 1
            } else if character == "'" {
                var value = ""
                index += 1
                var closed = false
                while index < characters.count {
                    if characters[index] == "'" {
                        if index + 1 < characters.count, characters[index + 1] == "'" {
                            value.append("'")
                            index += 2
                            continue
                        }
                        closed = true
                        index += 1
                        break
                    }
                    value.append(characters[index])
                    index += 1
                }
                guard closed else { throw fail("unterminated string") }
                tokens.append(.string(value))
            } else if character.isNumber || character == "-" {
                var end = index + 1
                while end < characters.count, characters[end].isNumber || characters[end] == "." || characters[end] == ":"
                    || characters[end] == "-" || characters[end].isLetter {
                    end += 1
                }
                let word = String(characters[index..<end])
                if let number = Double(word) {
                    // 400 digits parse as infinity, which no property equals or orders against.
                    guard number.isFinite else { throw fail("the number \(word.prefix(32))… is out of range") }
                    tokens.append(.number(number))
                } else {
                    tokens.append(.string(word))
                }
                index = end
            } else if character.isLetter || character == "_" || character == "$" {
                var end = index + 1
                while end < characters.count, characters[end].isLetter || characters[end].isNumber || characters[end] == "_"
                    || characters[end] == "/" || characters[end] == "." {
                    end += 1
                }
                tokens.append(.word(String(characters[index..<end])))
                index = end
            } else {
                throw fail("unexpected character '\(character)'")
            }
        }
        return tokens
    }

    struct Parser {
        let tokens: [Token]
        let properties: Set<String>
        let text: String
        var index = 0
        var depth = 0
        var terms = 0

        func failure(_ why: String) -> BookendError { APIErrors.invalidQuery("$filter", text, why) }

        mutating func next() -> Token? {
            guard index < tokens.count else { return nil }
            defer { index += 1 }
            return tokens[index]
        }

        func peekWord() -> String? {
            guard index < tokens.count, case .word(let word) = tokens[index] else { return nil }
            return word.lowercased()
        }

        mutating func expression() throws -> ODataFilter {
            var left = try conjunction()
            while peekWord() == "or" {
                index += 1
                left = .or(left, try conjunction())
            }
            return left
        }

        mutating func conjunction() throws -> ODataFilter {
            var left = try unary()
            while peekWord() == "and" {
                index += 1
                left = .and(left, try unary())
            }
            return left
        }

        mutating func unary() throws -> ODataFilter {
            if peekWord() == "not" {
                index += 1
                try enter()
                defer { depth -= 1 }
                return .not(try unary())
            }
            return try primary()
        }

        mutating func enter() throws {
            depth += 1
            guard depth <= ODataFilter.maxDepth else {
                throw failure("parentheses and not nest at most \(ODataFilter.maxDepth) deep")
            }
        }

        mutating func countTerm() throws {
            terms += 1
            guard terms <= ODataFilter.maxTerms else { throw failure("at most \(ODataFilter.maxTerms) comparisons") }
        }

        mutating func property(_ word: String) throws -> [String] {
            let name = word == "lastModifiedTime" ? "lastModified" : word
            guard properties.contains(name) else { throw failure("the property \(word) cannot be used in a filter here") }
            return name.split(separator: "/").map(String.init)
        }

        mutating func primary() throws -> ODataFilter {
            switch next() {
            case .open?:
                try enter()
                defer { depth -= 1 }
                let inner = try expression()
                guard next() == .close else { throw failure("missing ')'") }
                return inner
            case .word(let word)? where word.lowercased() == "startswith":
                guard next() == .open, case .word(let name)? = next(), next() == .comma, case .string(let prefix)? = next(),
                    next() == .close
                else { throw failure("startswith takes (property, 'prefix')") }
                try countTerm()
                return .startsWith(path: try property(name), prefix: prefix)
            case .word(let word)?:
                try countTerm()
                let path = try property(word)
                guard case .word(let op)? = next(), ["eq", "ne", "gt", "ge", "lt", "le"].contains(op.lowercased()) else {
                    throw failure("expected eq, ne, gt, ge, lt or le after \(word)")
                }
                return .compare(path: path, op: op.lowercased(), literal: try literal())
            default:
                throw failure("expected a comparison")
            }
        }

        mutating func literal() throws -> Literal {
            switch next() {
            case .string(let value)?: return .string(value)
            case .number(let value)?: return .number(value)
            case .word(let word)?:
                switch word.lowercased() {
                case "true": return .bool(true)
                case "false": return .bool(false)
                case "null": return .null
                case "datetime":
                    guard case .string(let value)? = next() else { throw failure("datetime needs a quoted value") }
                    return .string(value)
                default: throw failure("\(word) is not a literal")
                }
            default:
                throw failure("expected a value")
            }
        }
    }
}

/// Filterable properties per list (§8.1).
enum FilterProperties {
    static let pools: Set<String> = [
        "id", "state", "stateTransitionTime", "allocationState", "allocationStateTransitionTime", "creationTime",
        "lastModified", "enableAutoScale", "vmSize", "enableInterNodeCommunication", "displayName",
    ]
    static let nodes: Set<String> = [
        "id", "state", "schedulingState", "stateTransitionTime", "lastBootTime", "allocationTime", "startTaskInfo/state",
        "startTaskInfo/result", "startTaskInfo/exitCode", "startTaskInfo/startTime", "startTaskInfo/endTime", "isDedicated",
    ]
    static let jobs: Set<String> = [
        "id", "state", "stateTransitionTime", "creationTime", "lastModified", "executionInfo/startTime",
        "executionInfo/endTime", "executionInfo/poolId", "priority", "displayName",
    ]
    static let tasks: Set<String> = [
        "id", "state", "stateTransitionTime", "creationTime", "lastModified", "executionInfo/startTime",
        "executionInfo/endTime", "executionInfo/exitCode", "executionInfo/result", "executionInfo/retryCount",
        "executionInfo/requeueCount", "displayName", "nodeInfo/nodeId",
    ]
    static let prepRelease: Set<String> = {
        var names: Set<String> = ["poolId", "nodeId"]
        for prefix in ["jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo"] {
            for field in ["state", "startTime", "endTime", "exitCode", "result"] { names.insert("\(prefix)/\(field)") }
        }
        return names
    }()
    static let files: Set<String> = ["name", "isDirectory"]
}

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

    /// Parses `text`, allowing only `properties` (paths with `/`; names case-sensitive as on the wire),
    /// each only with the operators and literals its kind allows.
    static func parse(_ text: String, properties: [String: FilterKind]) throws -> ODataFilter {
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

    /// The values (lowered) the text property at `path` must hold for an entity to match, when the
    /// filter says so: `state eq 'completed'`, alone, within an `and`, or in an `or` of such terms.
    /// Nil when any value may match. A list passes them to its store, which then reads only those
    /// rows; every row it reads is still matched against the whole filter, so this only narrows.
    func requiredValues(of path: [String]) -> Set<String>? {
        switch self {
        case .compare(let property, "eq", .string(let value)) where property == path:
            return [value.lowercased()]
        case .and(let a, let b):
            switch (a.requiredValues(of: path), b.requiredValues(of: path)) {
            case (nil, nil): return nil
            case (let x?, nil): return x
            case (nil, let y?): return y
            case (let x?, let y?): return x.intersection(y)
            }
        case .or(let a, let b):
            guard let x = a.requiredValues(of: path), let y = b.requiredValues(of: path) else { return nil }
            return x.union(y)
        case .compare, .startsWith, .not:
            return nil
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
        let properties: [String: FilterKind]
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

        /// `or` binds looser than `and`, which binds looser than `not`.
        mutating func expression() throws -> ODataFilter {
            try chain("or", ODataFilter.or) { try $0.conjunction() }
        }

        mutating func conjunction() throws -> ODataFilter {
            try chain("and", ODataFilter.and) { try $0.unary() }
        }

        /// `operand (word operand)*`, grouped from the left as OData groups `a or b or c`.
        mutating func chain(_ word: String, _ combine: (ODataFilter, ODataFilter) -> ODataFilter,
                            _ operand: (inout Parser) throws -> ODataFilter) throws -> ODataFilter {
            var left = try operand(&self)
            while peekWord() == word {
                index += 1
                left = combine(left, try operand(&self))
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

        mutating func property(_ word: String) throws -> (path: [String], kind: FilterKind) {
            let name = word == "lastModifiedTime" ? "lastModified" : word
            guard let kind = properties[name] else { throw failure("the property \(word) cannot be used in a filter here") }
            return (name.split(separator: "/").map(String.init), kind)
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
                let (path, kind) = try property(name)
                guard case .text = kind else { throw failure("startswith applies to text properties, not to \(name)") }
                return .startsWith(path: path, prefix: prefix)
            case .word(let word)?:
                try countTerm()
                let (path, kind) = try property(word)
                guard case .word(let op)? = next(), ["eq", "ne", "gt", "ge", "lt", "le"].contains(op.lowercased()) else {
                    throw failure("expected eq, ne, gt, ge, lt or le after \(word)")
                }
                let comparison = op.lowercased()
                let value = try literal()
                try kind.check(comparison, value, property: word, failure: failure)
                return .compare(path: path, op: comparison, literal: value)
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
                    guard Timestamp.date(value) != nil else { throw failure("datetime'\(value)' is not an ISO 8601 date and time") }
                    return .string(value)
                default: throw failure("\(word) is not a literal")
                }
            default:
                throw failure("expected a value")
            }
        }
    }
}

/// What a filterable property holds, and so which operators and literals a filter may use on it.
enum FilterKind: Sendable {
    /// Ids, names: every comparison (case-insensitive) and `startswith`; a quoted literal.
    case text
    /// A state or result: `eq`/`ne` only, with one of the values the property can take.
    case enumeration(Set<String>)
    /// A time: every comparison, with `datetime'…'` or a quoted ISO 8601 time.
    case time
    /// A count or code: every comparison, with a number.
    case number
    /// `eq`/`ne` with `true` or `false`.
    case boolean

    /// Throws 400 `InvalidQueryParameterValue` when `op` or `literal` does not fit the property. Any
    /// property may be compared `eq`/`ne` with `null` (absent).
    func check(_ op: String, _ literal: ODataFilter.Literal, property: String, failure: (String) -> BookendError) throws {
        let equality = op == "eq" || op == "ne"
        if case .null = literal {
            guard equality else { throw failure("\(property) can be compared with null only by eq or ne") }
            return
        }
        switch self {
        case .text:
            guard case .string = literal else { throw failure("\(property) is compared with a quoted value") }
        case .enumeration(let values):
            guard equality else { throw failure("\(property) allows only eq and ne, not \(op)") }
            guard case .string(let value) = literal, values.contains(value.lowercased()) else {
                throw failure("\(property) is one of \(values.sorted().joined(separator: ", "))")
            }
        case .time:
            guard case .string(let value) = literal, Timestamp.date(value) != nil else {
                throw failure("\(property) is compared with a time, such as datetime'2025-01-01T00:00:00Z'")
            }
        case .number:
            guard case .number = literal else { throw failure("\(property) is compared with a number") }
        case .boolean:
            guard equality else { throw failure("\(property) allows only eq and ne, not \(op)") }
            guard case .bool = literal else { throw failure("\(property) is compared with true or false") }
        }
    }
}

/// Filterable properties per list (§8.1), with what each holds. State values come from the engine's
/// state enums, whose raw values are the wire's (lowercase), so a state the engine gains is filterable.
enum FilterProperties {
    static func states<S: CaseIterable & RawRepresentable>(_ type: S.Type) -> FilterKind where S.RawValue == String {
        .enumeration(Set(type.allCases.map(\.rawValue)))
    }
    /// A preparation's or release's state on the wire: a release that is only owed is not shown.
    static let executionStates = states(PreparationState.self)
    static let results = states(ExecutionResult.self)

    static let pools: [String: FilterKind] = [
        "id": .text, "state": states(PoolState.self), "stateTransitionTime": .time,
        "allocationState": states(AllocationState.self), "allocationStateTransitionTime": .time,
        "creationTime": .time, "lastModified": .time, "enableAutoScale": .boolean, "vmSize": .text,
        "enableInterNodeCommunication": .boolean, "displayName": .text,
    ]
    static let nodes: [String: FilterKind] = [
        "id": .text,
        "state": states(NodeState.self),
        "schedulingState": .enumeration(["enabled", "disabled"]), "stateTransitionTime": .time, "lastBootTime": .time,
        "allocationTime": .time, "startTaskInfo/state": executionStates, "startTaskInfo/result": results,
        "startTaskInfo/exitCode": .number, "startTaskInfo/startTime": .time, "startTaskInfo/endTime": .time, "isDedicated": .boolean,
    ]
    static let jobs: [String: FilterKind] = [
        "id": .text,
        "state": states(JobState.self),
        "stateTransitionTime": .time, "creationTime": .time, "lastModified": .time, "executionInfo/startTime": .time,
        "executionInfo/endTime": .time, "executionInfo/poolId": .text, "priority": .number, "displayName": .text,
    ]
    static let tasks: [String: FilterKind] = [
        "id": .text, "state": states(TaskState.self), "stateTransitionTime": .time,
        "creationTime": .time, "lastModified": .time, "executionInfo/startTime": .time, "executionInfo/endTime": .time,
        "executionInfo/exitCode": .number, "executionInfo/result": results, "executionInfo/retryCount": .number,
        "executionInfo/requeueCount": .number, "displayName": .text, "nodeInfo/nodeId": .text,
    ]
    static let prepRelease: [String: FilterKind] = {
        var kinds: [String: FilterKind] = ["poolId": .text, "nodeId": .text]
        for prefix in ["jobPreparationTaskExecutionInfo", "jobReleaseTaskExecutionInfo"] {
            kinds["\(prefix)/state"] = executionStates
            kinds["\(prefix)/startTime"] = .time
            kinds["\(prefix)/endTime"] = .time
            kinds["\(prefix)/exitCode"] = .number
            kinds["\(prefix)/result"] = results
        }
        return kinds
    }()
    static let files: [String: FilterKind] = ["name": .text, "isDirectory": .boolean]
    static let nodeCounts: [String: FilterKind] = ["poolId": .text]
    static let poolUsageMetrics: [String: FilterKind] = [
        "poolId": .text, "startTime": .time, "endTime": .time, "vmSize": .text, "totalCoreHours": .number,
    ]
}

/// One SQLite value, copied out of a statement so it can leave the database's queue.
public enum SQLiteValue: Sendable, Hashable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null

    public var int64: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }
    public var int: Int? { int64.map { Int($0) } }
    public var double: Double? {
        switch self {
        case .real(let value): value
        case .integer(let value): Double(value)
        default: nil
        }
    }
    public var string: String? {
        if case .text(let value) = self { return value }
        return nil
    }
    public var bool: Bool? { int64.map { $0 != 0 } }
    public var isNull: Bool { self == .null }
}

/// A type that can be bound as a statement parameter.
public protocol SQLiteBindable: Sendable {
    var sqliteValue: SQLiteValue { get }
}

extension SQLiteValue: SQLiteBindable { public var sqliteValue: SQLiteValue { self } }
extension Int: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Int64: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(self) } }
extension Int32: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(Int64(self)) } }
extension Double: SQLiteBindable { public var sqliteValue: SQLiteValue { .real(self) } }
extension String: SQLiteBindable { public var sqliteValue: SQLiteValue { .text(self) } }
extension Bool: SQLiteBindable { public var sqliteValue: SQLiteValue { .integer(self ? 1 : 0) } }
extension Optional: SQLiteBindable where Wrapped: SQLiteBindable {
    public var sqliteValue: SQLiteValue { self?.sqliteValue ?? .null }
}

/// The result columns of one statement: their names in order, and each name's position, so a row
/// finds a column by name with one hash lookup instead of comparing it against every name before it
/// (a page of 1,000 tasks looks up some 30,000 columns). Made once per statement and shared by all
/// of its rows. Where two columns share a name, the name finds the first, as a scan would.
public final class ColumnLayout: Sendable {
    public let names: [String]
    private let positions: [String: Int]

    public init(_ names: [String]) {
        self.names = names
        var positions: [String: Int] = [:]
        positions.reserveCapacity(names.count)
        for (position, name) in names.enumerated() where positions[name] == nil { positions[name] = position }
        self.positions = positions
    }

    /// Where the column named `name` is, or nil if the statement has no such column.
    public func position(of name: String) -> Int? { positions[name] }
}

/// One result row: column names and values, `Sendable` so it may leave the database's queue.
public struct Row: Sendable {
    public let layout: ColumnLayout
    public let values: [SQLiteValue]

    public var columns: [String] { layout.names }

    public init(columns: [String], values: [SQLiteValue]) {
        self.init(layout: ColumnLayout(columns), values: values)
    }

    public init(layout: ColumnLayout, values: [SQLiteValue]) {
        self.layout = layout
        self.values = values
    }

    public subscript(index: Int) -> SQLiteValue { values[index] }

    /// The value of a named column, or `.null` if the row has no such column.
    public subscript(name: String) -> SQLiteValue {
        guard let index = layout.position(of: name) else { return .null }
        return values[index]
    }

    /// Where the column named `name` is in this row, or nil.
    public func position(of name: String) -> Int? { layout.position(of: name) }
}

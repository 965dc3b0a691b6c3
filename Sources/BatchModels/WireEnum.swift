/// An Azure Batch enum as it travels: a lowercase string on the wire, the known values as cases, and
/// `unrecognized` for anything else. Switches over the known cases stay exhaustive, and a value added
/// by a newer server decodes instead of failing the whole response.
public protocol WireEnum: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Every value this version knows.
    static var known: [Self] { get }
    /// A value this version does not know, kept as sent (satisfied by the enum case of that name).
    static func unrecognized(_ value: String) -> Self
    /// The wire value.
    var rawValue: String { get }
}

extension WireEnum {
    /// Matches case-insensitively, as the service accepts input (`nonAdmin` is `nonadmin`); what it
    /// encodes is always the canonical lowercase value.
    @inlinable
    public init(rawValue: String) {
        // Stored and rendered values are already canonical: match them as they are first, and lower
        // the case (which allocates) only when that fails. Reading a page of tasks makes several
        // of these per task.
        let known = Self.known
        if let exact = known.first(where: { $0.rawValue == rawValue }) {
            self = exact
            return
        }
        let lowered = rawValue.lowercased()
        self = known.first { $0.rawValue == lowered } ?? .unrecognized(rawValue)
    }

    public init(from decoder: any Decoder) throws {
        self.init(rawValue: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    /// False for a value this version does not know.
    public var isKnown: Bool { Self.known.contains(self) }
}

extension WireEnum {
    /// For the enums that are also `ExpressibleByStringLiteral`: a literal is read as a wire value.
    public init(stringLiteral value: String) {
        self.init(rawValue: value)
    }
}

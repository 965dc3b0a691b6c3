/// A property the service stores and echoes without acting on it (`virtualMachineConfiguration`,
/// `containerSettings`, `outputFiles`, …): kept as JSON so a round trip loses nothing.
public enum OpaqueJSON: Codable, Sendable, Hashable {
    case null, bool(Bool), number(Double), string(String), array([OpaqueJSON]), object([String: OpaqueJSON])

    public init(from decoder: any Decoder) throws {
        // From the text when the decoder says what it is reading (see `OpaqueJSONReader.swift`):
        // trying each kind in turn costs an error per miss, and an error's cost grows with depth.
        if let source = decoder.userInfo[OpaqueJSON.sourceKey] as? Source, let value = source.value(at: decoder.codingPath) {
            self = value
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([OpaqueJSON].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: OpaqueJSON].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        // Whole numbers as integers, so a count sent as 3 comes back as 3 and not 3.0.
        case .number(let value) where value == value.rounded() && abs(value) < 1e15: try container.encode(Int64(value))
        case .number(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

/// A property kept verbatim whose wire type is an object (`containerSettings`, `networkConfiguration`,
/// …). Decoding checks only that it is one, so a client that sends a string or an array there hears
/// so, naming the property, instead of having it stored.
public typealias OpaqueJSONObject = [String: OpaqueJSON]

/// A property kept verbatim whose wire type is an array (`outputFiles`, `applicationPackageReferences`).
public typealias OpaqueJSONArray = [OpaqueJSON]

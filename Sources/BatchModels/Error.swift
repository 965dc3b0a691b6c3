// The Batch error body.

/// The text of an error (`message`).
public struct BatchErrorMessage: Codable, Sendable, Hashable {
    public var lang: String?
    public var value: String

    public init(lang: String? = nil, value: String) {
        self.lang = lang
        self.value = value
    }
}

/// A detail of an error (`values`), e.g. `PropertyName`.
public struct BatchErrorDetail: Codable, Sendable, Hashable {
    public var key: String
    public var value: String?

    public init(key: String, value: String? = nil) {
        self.key = key
        self.value = value
    }
}

/// The body of every error answer (and of a failed item of an add-task collection).
public struct BatchError: Codable, Sendable, Hashable {
    public var odataMetadata: String?
    public var code: String
    public var message: BatchErrorMessage?
    public var values: [BatchErrorDetail]?

    enum CodingKeys: String, CodingKey {
        case odataMetadata = "odata.metadata"
        case code
        case message
        case values
    }

    public init(
        odataMetadata: String? = nil,
        code: String,
        message: BatchErrorMessage? = nil,
        values: [BatchErrorDetail]? = nil
    ) {
        self.odataMetadata = odataMetadata
        self.code = code
        self.message = message
        self.values = values
    }
}

/// Every failure the library reports to its callers: an Azure Batch error code, a message for people
/// and optional details (`PropertyName`, `Reason`, …). The daemon turns `kind` into the HTTP status.
public struct BookendError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The class of failure, which decides the HTTP status on the API.
    public enum Kind: String, Sendable, Hashable {
        /// 400: the request itself is wrong.
        case invalidRequest
        /// 404: the pool, node, job, task or file does not exist.
        case notFound
        /// 409: an entity with that id exists, or the entity's state forbids the operation.
        case conflict
        /// 412: an ETag or date precondition failed.
        case preconditionFailed
        /// 500: a bug or an unexpected failure of this machine (disk, SQLite).
        case internalError
    }

    public let kind: Kind
    /// The Azure Batch error code, e.g. `JobNotFound`, `InvalidPropertyValue`.
    public let code: String
    public let message: String
    /// Extra detail as key/value pairs (Batch error `values`).
    public let details: [Detail]

    public struct Detail: Sendable, Hashable, Codable {
        public let key: String
        public let value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    public init(_ kind: Kind, _ code: String, _ message: String, details: [Detail] = []) {
        self.kind = kind
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(code): \(message)" }

    static func invalidProperty(_ name: String, _ value: String?, _ why: String) -> BookendError {
        var details = [Detail(key: "PropertyName", value: name)]
        if let value { details.append(Detail(key: "PropertyValue", value: value)) }
        return BookendError(.invalidRequest, "InvalidPropertyValue", "The value provided for \(name) is invalid: \(why)", details: details)
    }

    static func missingProperty(_ name: String) -> BookendError {
        BookendError(.invalidRequest, "MissingRequiredProperty", "The property \(name) is required",
            details: [Detail(key: "PropertyName", value: name)])
    }

    static func notFound(_ code: String, _ what: String) -> BookendError {
        BookendError(.notFound, code, "\(what) does not exist")
    }

    static func conflict(_ code: String, _ message: String) -> BookendError {
        BookendError(.conflict, code, message)
    }

    static func internalError(_ message: String) -> BookendError {
        BookendError(.internalError, "InternalError", message)
    }
}

import Bookend
import Foundation

/// Errors the API layer raises itself (the library raises the rest), and the Batch error body.
enum APIErrors {
    static func status(_ kind: BookendError.Kind) -> Int {
        switch kind {
        case .invalidRequest: 400
        case .notFound: 404
        case .conflict: 409
        case .preconditionFailed: 412
        case .internalError: 500
        }
    }

    /// Status for codes whose HTTP status is not the one their kind implies.
    static func status(for error: BookendError) -> Int {
        switch error.code {
        case "AuthenticationFailed": 403
        case "RequestBodyTooLarge": 413
        case "UnsupportedHttpVerb": 405
        case "MissingContentLengthHeader": 411
        case "UnsupportedMediaType": 415
        case "InvalidRange": 416
        case "ServerBusy": 503
        default: status(error.kind)
        }
    }

    static func decoding(_ error: DecodingError) -> BookendError {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            (codingPath + (last.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
                .joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let name = path(context.codingPath, key)
            return BookendError(.invalidRequest, "MissingRequiredProperty", "The property \(name) is required",
                details: [.init(key: "PropertyName", value: name)])
        case .valueNotFound(_, let context):
            let name = path(context.codingPath)
            return BookendError(.invalidRequest, "MissingRequiredProperty", "The property \(name) is required",
                details: [.init(key: "PropertyName", value: name)])
        case .typeMismatch(let type, let context):
            // The body is well-formed JSON (StrictJSON passed): what is wrong is one property's value.
            let name = path(context.codingPath)
            return BookendError(.invalidRequest, "InvalidPropertyValue",
                "The value provided for \(name) is invalid: must be of type \(wireType(type))",
                details: [.init(key: "PropertyName", value: name)])
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return BookendError(.invalidRequest, "InvalidRequestBody", "The request body is not valid JSON")
            }
            let name = path(context.codingPath)
            return BookendError(.invalidRequest, "InvalidRequestBody", "The request body is invalid at \(name)",
                details: [.init(key: "PropertyName", value: name)])
        @unknown default:
            return BookendError(.invalidRequest, "InvalidRequestBody", "The request body is invalid")
        }
    }

    /// The JSON name of a Swift type a decoder expected.
    static func wireType(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "string"
        case is Bool.Type: "boolean"
        case is Int.Type, is Int32.Type, is Int64.Type: "integer"
        case is Double.Type: "number"
        default:
            // Keyed containers and arrays report dictionary and array types.
            String(describing: type).hasPrefix("Array") ? "array" : "object"
        }
    }

    /// Properties whose wire type is an integer (Int on the request shapes).
    static let integerProperties: Set<String> = [
        "targetDedicatedNodes", "targetLowPriorityNodes", "taskSlotsPerNode", "requiredSlots", "priority",
        "maxParallelTasks", "maxTaskRetryCount", "start", "end", "code",
    ]

    /// JSONDecoder reports a number that does not fit an `Int` (1.5, 1e400, 2^63) as "not valid JSON"
    /// without a path. When the body is valid JSON, this finds such a number under an integer
    /// property and names it, so the client learns which value to fix.
    static func unfitNumber(in body: Data) -> BookendError? {
        guard let root = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) else { return nil }
        var pending: [(path: String, value: Any)] = [("", root)]
        while let (path, value) = pending.popLast() {
            if let object = value as? [String: Any] {
                for (key, member) in object {
                    let name = path.isEmpty ? key : path + "." + key
                    // Below Int64.min JSONSerialization returns an NSDecimalNumber, which Int(exactly:) wraps.
                    if integerProperties.contains(key), let number = member as? NSNumber, !(member is Bool),
                        number is NSDecimalNumber ? Int(number.description) == nil : Int(exactly: number) == nil {
                        return BookendError(.invalidRequest, "InvalidPropertyValue",
                            "The value provided for \(name) is invalid: must be a whole number from \(Int.min) to \(Int.max)",
                            details: [.init(key: "PropertyName", value: name), .init(key: "PropertyValue", value: "\(number)")])
                    }
                    pending.append((name, member))
                }
            } else if let array = value as? [Any] {
                for (index, member) in array.enumerated() { pending.append((path + "[\(index)]", member)) }
            }
        }
        return nil
    }

    static func invalidQuery(_ name: String, _ value: String, _ why: String) -> BookendError {
        BookendError(.invalidRequest, "InvalidQueryParameterValue", "The value for query parameter \(name) is invalid: \(why)",
            details: [.init(key: "QueryParameterName", value: name), .init(key: "QueryParameterValue", value: value)])
    }

    static func authentication(_ why: String) -> BookendError {
        BookendError(.invalidRequest, "AuthenticationFailed",
            "Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
            details: [.init(key: "AuthenticationErrorDetail", value: why)])
    }

    /// An Authorization header that is there but not of the form `SharedKey account:signature`
    /// (400, §6.6); a missing one, or a signature that does not match, is 403 `AuthenticationFailed`.
    static func malformedAuthorization(_ why: String) -> BookendError {
        BookendError(.invalidRequest, "InvalidAuthenticationInfo", "Authentication information is not given in the correct format. Check the value of Authorization header.",
            details: [.init(key: "AuthenticationErrorDetail", value: why)])
    }

    static let conditionNotMet = BookendError(.preconditionFailed, "ConditionNotMet", "The condition specified using HTTP conditional header(s) is not met.")

    /// `If-Match` and `If-None-Match` in one request: one asks for this version, the other for any
    /// other; Batch refuses the pair rather than answering 412 or 304 for it (§6.6).
    static let multipleConditionHeaders = BookendError(.invalidRequest, "MultipleConditionHeadersNotSupported",
        "Multiple condition headers are not supported: send If-Match or If-None-Match, not both.")

    static func resourceNotFound(_ path: String) -> BookendError {
        BookendError(.notFound, "ResourceNotFound", "The specified resource does not exist.")
    }

    static func unsupportedVerb(_ method: String) -> BookendError {
        BookendError(.invalidRequest, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb \(method).")
    }

    /// The Batch error body (§6.5).
    static func body(_ error: BookendError, base: String, requestID: String) -> Data {
        var object: [String: JSONValue] = [
            "odata.metadata": Wire.metadata(base, "Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"),
            "code": .string(error.code),
            "message": .object([
                "lang": .string("en-US"),
                "value": .string("\(error.message)\nRequestId:\(requestID)\nTime:\(Wire.isoString(Date()))"),
            ]),
        ]
        if !error.details.isEmpty {
            object["values"] = .array(error.details.map { .object(["key": .string($0.key), "value": .string($0.value)]) })
        }
        return Wire.encode(.object(object))
    }
}

/// Input rules shared by every entry point (library, daemon, CLI), from the Batch limits.
enum Validate {
    /// Pool, job, task, preparation and release ids: 1–64 of `[A-Za-z0-9_-]`.
    static func id(_ value: String, property: String) throws(BookendError) {
        guard !value.isEmpty else { throw BookendError.missingProperty(property) }
        guard value.utf8.count <= 64,
            value.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 45 || $0 == 95 })
        else {
            throw BookendError.invalidProperty(property, value, "ids are 1 to 64 letters, digits, hyphens or underscores")
        }
    }

    static func displayName(_ value: String?, property: String = "displayName") throws(BookendError) {
        if let value, value.count > 1024 { throw BookendError.invalidProperty(property, nil, "at most 1024 characters") }
    }

    static func commandLine(_ value: String, property: String) throws(BookendError) {
        guard !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw BookendError.missingProperty(property) }
    }

    /// Milliseconds, or nil for unlimited / absent.
    static func duration(_ value: String?, property: String) throws(BookendError) -> Int64? {
        guard let value else { return nil }
        do {
            return try ISODuration.parse(value)
        } catch {
            throw BookendError.invalidProperty(property, value, error.description)
        }
    }

    static func retryCount(_ value: Int?, property: String) throws(BookendError) {
        if let value, value < -1 { throw BookendError.invalidProperty(property, "\(value)", "must be -1 (unlimited) or at least 0") }
    }

    static func oneOf(_ value: String?, _ allowed: [String], property: String) throws(BookendError) -> String? {
        guard let value else { return nil }
        let lowered = value.lowercased()
        guard allowed.contains(lowered) else {
            throw BookendError.invalidProperty(property, value, "must be one of \(allowed.joined(separator: ", "))")
        }
        return lowered
    }

    static func environment(_ settings: [EnvironmentSetting]?, property: String) throws(BookendError) {
        for setting in settings ?? [] where setting.name.isEmpty || setting.name.contains("=") {
            throw BookendError.invalidProperty(property, setting.name, "environment variable names are non-empty and have no '='")
        }
    }

    static func metadata(_ items: [MetadataItem]?) throws(BookendError) {
        for item in items ?? [] where item.name.isEmpty {
            throw BookendError(.invalidRequest, "EmptyMetadataKey", "metadata names must not be empty")
        }
    }

    static func userIdentity(_ identity: UserIdentity?, property: String) throws(BookendError) -> UserIdentity {
        guard let identity else { return .nonAdmin }
        if identity.username != nil, identity.autoUser != nil {
            throw BookendError.invalidProperty(property, nil, "give either username or autoUser, not both")
        }
        if let name = identity.username {
            throw BookendError.invalidProperty(property + ".username", name, "named user accounts are not supported; use autoUser")
        }
        let auto = identity.autoUser ?? UserIdentity.AutoUser()
        let scope = try oneOf(auto.scope, ["task", "pool"], property: property + ".autoUser.scope") ?? "pool"
        let level = try oneOf(auto.elevationLevel, ["nonadmin", "admin"], property: property + ".autoUser.elevationLevel") ?? "nonadmin"
        return UserIdentity(autoUser: .init(scope: scope, elevationLevel: level))
    }

    static func resourceFiles(_ files: [ResourceFile]?, property: String) throws(BookendError) {
        for (index, file) in (files ?? []).enumerated() {
            let name = "\(property)[\(index)]"
            let sources = [file.httpUrl, file.storageContainerUrl, file.autoStorageContainerName].compactMap { $0 }
            guard sources.count == 1 else {
                throw BookendError.invalidProperty(name, nil, "give exactly one of httpUrl, storageContainerUrl, autoStorageContainerName")
            }
            if file.httpUrl != nil {
                guard let path = file.filePath, !path.isEmpty else { throw BookendError.missingProperty(name + ".filePath") }
            }
            if file.httpUrl == nil, ResourceFiles.containerFolder(file, storage: "/") == nil {
                throw BookendError.invalidProperty(name, file.storageContainerUrl ?? file.autoStorageContainerName, "the storage container name is missing or invalid")
            }
            if let path = file.filePath {
                guard ResourceFiles.isContained(path) else {
                    throw BookendError.invalidProperty(name + ".filePath", path, "must be a relative path that stays inside the working directory")
                }
            }
            if let mode = file.fileMode, UInt32(mode, radix: 8) == nil || mode.count > 4 {
                throw BookendError.invalidProperty(name + ".fileMode", mode, "must be an octal mode such as 0644")
            }
        }
    }
}

import Foundation

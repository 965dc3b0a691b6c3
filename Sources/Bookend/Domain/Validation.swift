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

    /// What every process Bookend runs gives (a task, a start, preparation or release task): its
    /// command line, environment and resource files, named under `owner` (e.g. `startTask`).
    static func process(
        _ owner: String, commandLine: String, environment settings: [EnvironmentSetting]?, resourceFiles files: [ResourceFile]?
    ) throws(BookendError) {
        try Validate.commandLine(commandLine, property: "\(owner).commandLine")
        try Validate.environment(settings, property: "\(owner).environmentSettings")
        try Validate.resourceFiles(files, property: "\(owner).resourceFiles")
    }

    static func commandLine(_ value: String, property: String) throws(BookendError) {
        guard hasNonBlank(value) else { throw BookendError.missingProperty(property) }
    }

    /// Whether anything is left of `value` once whitespace and newlines are trimmed: the same answer
    /// as `trimmingCharacters(in: .whitespacesAndNewlines)`, without bridging the whole string to
    /// NSString for each task added (4 % of a library ingest's engine thread in a release profile).
    /// It stops at the first other character; ASCII is decided here (tab, LF, VT, FF, CR, space are
    /// the set's ASCII members), anything else by the set itself.
    static func hasNonBlank(_ value: String) -> Bool {
        value.unicodeScalars.contains { scalar in
            if scalar.isASCII { return !(scalar == " " || (0x09...0x0D).contains(scalar.value)) }
            return !CharacterSet.whitespacesAndNewlines.contains(scalar)
        }
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

    /// Local nodes one pool may have: each is a folder and a share of this machine, and each
    /// resize inserts its nodes in one transaction (docs/decisions.md).
    static let maxNodesPerPool = 1000

    /// `targetDedicatedNodes` and `targetLowPriorityNodes` of a create or resize. Each is checked on
    /// its own before they are added, so no pair of client numbers can overflow the sum.
    static func nodeCounts(dedicated: Int, lowPriority: Int) throws(BookendError) {
        let limit = maxNodesPerPool
        for (property, value) in [("targetDedicatedNodes", dedicated), ("targetLowPriorityNodes", lowPriority)] {
            guard (0...limit).contains(value) else {
                throw BookendError.invalidProperty(property, "\(value)", "must be 0 to \(limit) (local nodes per pool)")
            }
        }
        guard dedicated + lowPriority <= limit else {
            throw BookendError.invalidProperty("targetDedicatedNodes", "\(dedicated)",
                "targetDedicatedNodes + targetLowPriorityNodes must be at most \(limit) (local nodes per pool)")
        }
    }

    /// `requiredSlots`: at least 1 and at most the largest `taskSlotsPerNode` (256). More could never
    /// fit any node, and the per-job slot totals are sums that must not overflow.
    static func requiredSlots(_ value: Int, property: String) throws(BookendError) {
        guard (1...256).contains(value) else {
            throw BookendError.invalidProperty(property, "\(value)", "must be 1 to 256 (the largest taskSlotsPerNode)")
        }
    }

    /// Ids `dependsOn.taskIdRanges` may expand to in one task, all ranges together: each becomes a
    /// row, so the total is bounded like `taskIds` (64000 characters) rather than by the body size.
    static let maxRangeDependencies = 100_000

    /// Dependencies (task ids, ranges expanded) all the tasks of one `addTasks` call may have together:
    /// what one request may make the engine write, bounded (a few tenths of a second of inserts here).
    static let maxCallDependencies = 200_000

    /// Expands `taskIdRanges` into task ids, refusing a range whose start exceeds its end and a list
    /// that would expand to more than `maxRangeDependencies` ids. Counted with checked arithmetic,
    /// because `start` and `end` are any 64-bit numbers a client sends.
    static func expand(_ ranges: [TaskIDRange], property: String) throws(BookendError) -> [String] {
        var total = 0
        for (index, range) in ranges.enumerated() {
            let name = "\(property)[\(index)]"
            let value = "\(range.start)-\(range.end)"
            guard range.start <= range.end else {
                throw BookendError.invalidProperty(name, value, "start must not be greater than end")
            }
            let (span, spanOverflow) = range.end.subtractingReportingOverflow(range.start)
            let (sum, sumOverflow) = total.addingReportingOverflow(span)
            guard !spanOverflow, !sumOverflow, sum < maxRangeDependencies else {
                throw BookendError.invalidProperty(name, value,
                    "the ranges of one task may cover at most \(maxRangeDependencies) task ids in all")
            }
            total = sum + 1
        }
        var ids: [String] = []
        ids.reserveCapacity(total)
        for range in ranges { ids.append(contentsOf: (range.start...range.end).lazy.map(String.init)) }
        return ids
    }

    /// A resource file's `fileMode`: octal permission bits only (at most 0777). setuid, setgid and
    /// sticky bits are refused: the engine may run as root, and such a file would hand the task's
    /// privileges to whoever runs it later.
    static func fileMode(_ mode: String, property: String) throws(BookendError) {
        guard !mode.isEmpty, mode.utf8.count <= 4, mode.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x37 }),
            let bits = UInt32(mode, radix: 8)
        else {
            throw BookendError.invalidProperty(property, mode, "must be an octal mode such as 0644")
        }
        guard bits <= 0o777 else {
            throw BookendError.invalidProperty(property, mode, "setuid, setgid and sticky bits are not allowed; at most 0777")
        }
    }

    static func retryCount(_ value: Int?, property: String) throws(BookendError) {
        if let value, value < -1 { throw BookendError.invalidProperty(property, "\(value)", "must be -1 (unlimited) or at least 0") }
    }

    /// A wire enum's value, refused when this version does not know it (`.unrecognized`), with the
    /// message `oneOf` gives.
    static func known<Value: WireEnum>(_ value: Value?, property: String) throws(BookendError) -> Value? {
        guard let value else { return nil }
        guard value.isKnown else {
            throw BookendError.invalidProperty(property, value.rawValue, "must be one of \(Value.known.map(\.rawValue).joined(separator: ", "))")
        }
        return value
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
        let auto = identity.autoUser ?? AutoUserSpecification()
        let scope = try known(auto.scope, property: property + ".autoUser.scope") ?? .pool
        let level = try known(auto.elevationLevel, property: property + ".autoUser.elevationLevel") ?? .nonAdmin
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
            if let mode = file.fileMode { try fileMode(mode, property: name + ".fileMode") }
        }
    }
}

import Foundation

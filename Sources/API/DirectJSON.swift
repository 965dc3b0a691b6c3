import BatchModels

/// A wire model that writes its own JSON object, member by member, without going through `Encoder`.
///
/// Why: a page of 1,000 tasks spent a third of the daemon's CPU in `Encodable` (a boxed keyed
/// container per nested object, a generic call and a metadata lookup per optional property), more
/// than reading the rows from SQLite, and a GET job a tenth. Only the types of a task and of a job
/// conform; everything else, and the members of these types that are rarely set, still go through
/// `JSONBytesEncoder`.
///
/// The bytes must be exactly what the type's `Encodable` conformance writes through
/// `JSONBytesEncoder`: the same members in the same order, nil left out. `DirectJSONTests` compares
/// the two over values with every member set and unset, so a property added to the model and not
/// here fails there.
protocol DirectJSON: Encodable {
    func writeMembers(_ object: inout JSONObjectWriter) throws
}

extension DirectJSON {
    /// The whole object; `select` keeps only those members (`$select` on the root object).
    func writeJSON(into bytes: inout [UInt8], select: Set<String>? = nil) throws {
        var object = JSONObjectWriter(select: select)
        swap(&object.bytes, &bytes)
        defer { swap(&object.bytes, &bytes) }
        object.bytes.append(UInt8(ascii: "{"))
        try writeMembers(&object)
        object.bytes.append(UInt8(ascii: "}"))
    }
}

/// Writes the members of one JSON object into `bytes`. Keys are static ASCII names, written without
/// escaping; values are escaped as `JSONBytesEncoder` escapes them.
struct JSONObjectWriter {
    var bytes: [UInt8] = []
    private var count = 0
    private let select: Set<String>?

    init(select: Set<String>?) {
        self.select = select
    }

    /// Writes `"key":` after a comma when needed, or answers false when `$select` leaves it out.
    private mutating func key(_ key: StaticString) -> Bool {
        if let select, !select.contains(key.description) { return false }
        if count > 0 { bytes.append(UInt8(ascii: ",")) }
        count += 1
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
        return true
    }

    mutating func field(_ name: StaticString, _ value: String?) {
        guard let value, key(name) else { return }
        JSONBytesEncoder.writeString(value, into: &bytes)
    }

    mutating func field(_ name: StaticString, _ value: Int?) {
        guard let value, key(name) else { return }
        JSONBytesEncoder.writeDecimal(Int64(value), into: &bytes)
    }

    mutating func field(_ name: StaticString, _ value: Bool?) {
        guard let value, key(name) else { return }
        JSONBytesEncoder.writeBool(value, into: &bytes)
    }

    mutating func field<Value: WireEnum>(_ name: StaticString, _ value: Value?) {
        guard let value, key(name) else { return }
        JSONBytesEncoder.writeString(value.rawValue, into: &bytes)
    }

    mutating func field<Value: DirectJSON>(_ name: StaticString, _ value: Value?) throws {
        guard let value, key(name) else { return }
        try value.writeJSON(into: &bytes)
    }

    mutating func field<Value: DirectJSON>(_ name: StaticString, _ values: [Value]?) throws {
        guard let values, key(name) else { return }
        bytes.append(UInt8(ascii: "["))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            try value.writeJSON(into: &bytes)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// A member this writer has no shortcut for (rarely set, or free-form): the generic encoder,
    /// straight (such a member is never `DirectJSON`, so there is nothing to look for first).
    mutating func field<Value: Encodable>(_ name: StaticString, encoding value: Value?) throws {
        guard let value, key(name) else { return }
        try JSONBytesEncoder.encodeThroughEncoder(value, select: nil, into: &bytes)
    }
}

// The members of each type in the order its `CodingKeys` (or synthesized conformance) lists them.

extension BatchTask: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("odata.metadata", odataMetadata)
        object.field("id", id)
        object.field("displayName", displayName)
        object.field("url", url)
        object.field("eTag", eTag)
        object.field("lastModified", lastModified)
        object.field("creationTime", creationTime)
        try object.field("exitConditions", encoding: exitConditions)
        object.field("state", state)
        object.field("stateTransitionTime", stateTransitionTime)
        object.field("previousState", previousState)
        object.field("previousStateTransitionTime", previousStateTransitionTime)
        object.field("commandLine", commandLine)
        try object.field("containerSettings", encoding: containerSettings)
        try object.field("resourceFiles", encoding: resourceFiles)
        try object.field("outputFiles", encoding: outputFiles)
        try object.field("environmentSettings", environmentSettings)
        try object.field("affinityInfo", affinityInfo)
        try object.field("constraints", constraints)
        object.field("requiredSlots", requiredSlots)
        try object.field("userIdentity", userIdentity)
        try object.field("multiInstanceSettings", encoding: multiInstanceSettings)
        try object.field("executionInfo", executionInfo)
        try object.field("nodeInfo", nodeInfo)
        try object.field("dependsOn", encoding: dependsOn)
        try object.field("applicationPackageReferences", encoding: applicationPackageReferences)
        try object.field("stats", encoding: stats)
        try object.field("bookendWaitReason", bookendWaitReason)
    }
}

extension BatchTaskExecutionInfo: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("startTime", startTime)
        object.field("endTime", endTime)
        object.field("exitCode", exitCode)
        try object.field("containerInfo", encoding: containerInfo)
        try object.field("failureInfo", failureInfo)
        object.field("retryCount", retryCount)
        object.field("lastRetryTime", lastRetryTime)
        object.field("requeueCount", requeueCount)
        object.field("lastRequeueTime", lastRequeueTime)
        object.field("result", result)
    }
}

extension BatchTaskFailureInfo: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("category", category)
        object.field("code", code)
        object.field("message", message)
        try object.field("details", details)
    }
}

extension NameValuePair: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("name", name)
        object.field("value", value)
    }
}

extension EnvironmentSetting: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("name", name)
        object.field("value", value)
    }
}

extension BatchNodeInfo: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("affinityId", affinityId)
        object.field("nodeUrl", nodeUrl)
        object.field("poolId", poolId)
        object.field("nodeId", nodeId)
        object.field("taskRootDirectory", taskRootDirectory)
        object.field("taskRootDirectoryUrl", taskRootDirectoryUrl)
    }
}

extension BatchTaskConstraints: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("maxWallClockTime", maxWallClockTime)
        object.field("retentionTime", retentionTime)
        object.field("maxTaskRetryCount", maxTaskRetryCount)
    }
}

extension UserIdentity: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("username", username)
        try object.field("autoUser", autoUser)
    }
}

extension AutoUserSpecification: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("scope", scope)
        object.field("elevationLevel", elevationLevel)
    }
}

extension AffinityInfo: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("affinityId", affinityId)
    }
}

extension BatchJob: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("odata.metadata", odataMetadata)
        object.field("id", id)
        object.field("displayName", displayName)
        object.field("usesTaskDependencies", usesTaskDependencies)
        object.field("url", url)
        object.field("eTag", eTag)
        object.field("lastModified", lastModified)
        object.field("creationTime", creationTime)
        object.field("state", state)
        object.field("stateTransitionTime", stateTransitionTime)
        object.field("previousState", previousState)
        object.field("previousStateTransitionTime", previousStateTransitionTime)
        object.field("priority", priority)
        object.field("allowTaskPreemption", allowTaskPreemption)
        object.field("maxParallelTasks", maxParallelTasks)
        try object.field("constraints", constraints)
        try object.field("jobManagerTask", encoding: jobManagerTask)
        try object.field("jobPreparationTask", jobPreparationTask)
        try object.field("jobReleaseTask", jobReleaseTask)
        try object.field("commonEnvironmentSettings", commonEnvironmentSettings)
        try object.field("poolInfo", poolInfo)
        object.field("onAllTasksComplete", onAllTasksComplete)
        object.field("onTaskFailure", onTaskFailure)
        try object.field("networkConfiguration", encoding: networkConfiguration)
        try object.field("metadata", metadata)
        try object.field("executionInfo", executionInfo)
        try object.field("stats", encoding: stats)
        try object.field("bookendWaitReason", bookendWaitReason)
    }
}

extension BatchJobConstraints: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("maxWallClockTime", maxWallClockTime)
        object.field("maxTaskRetryCount", maxTaskRetryCount)
    }
}

extension BatchJobPreparationTask: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("id", id)
        object.field("commandLine", commandLine)
        try object.field("containerSettings", encoding: containerSettings)
        try object.field("resourceFiles", encoding: resourceFiles)
        try object.field("environmentSettings", environmentSettings)
        try object.field("constraints", constraints)
        object.field("waitForSuccess", waitForSuccess)
        try object.field("userIdentity", userIdentity)
        object.field("rerunOnNodeRebootAfterSuccess", rerunOnNodeRebootAfterSuccess)
    }
}

extension BatchJobReleaseTask: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("id", id)
        object.field("commandLine", commandLine)
        try object.field("containerSettings", encoding: containerSettings)
        try object.field("resourceFiles", encoding: resourceFiles)
        try object.field("environmentSettings", environmentSettings)
        object.field("maxWallClockTime", maxWallClockTime)
        object.field("retentionTime", retentionTime)
        try object.field("userIdentity", userIdentity)
    }
}

extension BatchPoolInfo: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("poolId", poolId)
        try object.field("autoPoolSpecification", encoding: autoPoolSpecification)
    }
}

extension BatchJobExecutionInfo: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("startTime", startTime)
        object.field("endTime", endTime)
        object.field("poolId", poolId)
        try object.field("schedulingError", schedulingError)
        object.field("terminateReason", terminateReason)
    }
}

extension MetadataItem: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("name", name)
        object.field("value", value)
    }
}

extension BookendWaitReason: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("state", state)
        object.field("code", code)
        object.field("message", message)
        try object.field("failedPreparations", encoding: failedPreparations)
        object.field("dependencyId", dependencyId)
    }
}

// The answer of `addtaskcollection`: up to 100 results per call, one call per 100 tasks ingested.

extension BatchTaskAddCollectionResult: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("odata.metadata", odataMetadata)
        try object.field("value", value)
    }
}

extension BatchTaskAddResult: DirectJSON {
    func writeMembers(_ object: inout JSONObjectWriter) throws {
        object.field("status", status)
        object.field("taskId", taskId)
        object.field("eTag", eTag)
        object.field("lastModified", lastModified)
        object.field("location", location)
        try object.field("error", encoding: error)
    }
}

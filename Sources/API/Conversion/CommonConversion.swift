import BatchModels
import Bookend

// The engine's values that several resources share, as their wire models. Every engine → wire
// conversion lives under Conversion/, one file per resource; enums cross by their wire value, so a
// state the models do not know still reaches the client as the engine wrote it (`.unrecognized`).

extension OpaqueJSON {
    init(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .number(let number): self = .number(number)
        case .string(let text): self = .string(text)
        case .array(let items): self = .array(items.map(OpaqueJSON.init))
        case .object(let members): self = .object(members.mapValues(OpaqueJSON.init))
        }
    }

    init?(_ value: JSONValue?) {
        guard let value else { return nil }
        self.init(value)
    }
}

extension BatchModels.ResourceFile {
    init(_ file: Bookend.ResourceFile) {
        self.init(
            httpUrl: file.httpUrl, storageContainerUrl: file.storageContainerUrl, autoStorageContainerName: file.autoStorageContainerName,
            blobPrefix: file.blobPrefix, filePath: file.filePath, fileMode: file.fileMode)
    }
}

extension BatchModels.UserIdentity {
    init(_ identity: Bookend.UserIdentity) {
        self.init(
            username: identity.username,
            autoUser: identity.autoUser.map {
                AutoUserSpecification(scope: $0.scope.map(AutoUserScope.init(rawValue:)), elevationLevel: $0.elevationLevel.map(ElevationLevel.init(rawValue:)))
            })
    }
}

extension BatchModels.ExitOptions {
    init(_ options: Bookend.ExitOptions) {
        self.init(jobAction: options.jobAction.map(BatchJobAction.init(rawValue:)), dependencyAction: options.dependencyAction.map(DependencyAction.init(rawValue:)))
    }
}

extension BatchModels.ExitConditions {
    init(_ conditions: Bookend.ExitConditions) {
        self.init(
            exitCodes: conditions.exitCodes?.map { BatchModels.ExitCodeMapping(code: $0.code, exitOptions: .init($0.exitOptions)) },
            exitCodeRanges: conditions.exitCodeRanges?.map {
                BatchModels.ExitCodeRangeMapping(start: $0.start, end: $0.end, exitOptions: .init($0.exitOptions))
            },
            preProcessingError: conditions.preProcessingError.map(BatchModels.ExitOptions.init),
            fileUploadError: conditions.fileUploadError.map(BatchModels.ExitOptions.init),
            default: conditions.default.map(BatchModels.ExitOptions.init))
    }
}

extension BatchTaskFailureInfo {
    init(_ info: FailureInfo) {
        self.init(
            category: ErrorCategory(rawValue: info.category), code: info.code, message: info.message,
            details: info.details)
    }
}

extension BatchTaskExecutionResult {
    init?(_ result: String?) {
        guard let result else { return nil }
        self.init(rawValue: result)
    }
}

extension BookendWaitReason {
    /// Bookend's wait explanation (`bookendWaitReason`, docs/daemon.md) on a job or task GET.
    init(_ reason: WaitReason) {
        self.init(
            state: BookendWaitState(rawValue: reason.state.rawValue), code: reason.code, message: reason.message,
            failedPreparations: reason.failedPreparations?.map {
                BookendFailedPreparation(
                    nodeId: $0.nodeId, exitCode: $0.exitCode, failureInfo: $0.failureInfo.map(BatchTaskFailureInfo.init), stderrTail: $0.stderrTail)
            },
            dependencyId: reason.dependencyId)
    }
}

extension BatchError {
    /// A Batch error as an item of a list answer carries it (no `odata.metadata`).
    init(_ error: BookendError) {
        self.init(
            code: error.code, message: BatchErrorMessage(lang: "en-US", value: error.message),
            values: error.details.isEmpty ? nil : error.details.map { BatchErrorDetail(key: $0.key, value: $0.value) })
    }
}

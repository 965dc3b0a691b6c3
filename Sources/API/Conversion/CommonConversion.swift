import BatchModels
import Bookend

// The engine's values that several resources share, as their wire models. Every engine → wire
// conversion lives under Conversion/, one file per resource (and every wire body → engine value in
// SpecConversion.swift); enums cross by their wire value, so a state the models do not know still
// reaches the client as the engine wrote it (`.unrecognized`). The sub-shapes the engine stores
// verbatim (start, preparation and release tasks, resource files, user identities, exit conditions)
// are the wire's own types and need no conversion.

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

import BatchModels
import Bookend

// The engine's values that several resources share, as their wire models. Every engine → wire
// conversion lives under Conversion/, one file per resource (and every wire body → engine value in
// SpecConversion.swift); enums cross by their wire value, so a state the models do not know still
// reaches the client as the engine wrote it (`.unrecognized`). The sub-shapes the engine stores
// verbatim (start, preparation and release tasks, resource files, user identities, exit conditions)
// are the wire's own types and need no conversion.

/// A task's `failureInfo`, and a job's `schedulingError` (the same type on both sides).
extension BatchTaskFailureInfo {
    init(_ info: FailureInfo) {
        self.init(category: ErrorCategory(rawValue: info.category), code: info.code, message: info.message, details: info.details)
    }
}

/// What every entity the engine versions (pool, job, task) carries: its ETag, times and state.
protocol VersionedEntity {
    associatedtype State: RawRepresentable where State.RawValue == String
    var eTag: String { get }
    var lastModified: String { get }
    var creationTime: String { get }
    var state: State { get }
    var stateTransitionTime: String { get }
}

extension Pool: VersionedEntity {}
extension Job: VersionedEntity {}
extension JobTask: VersionedEntity {}

/// The same properties on the wire, where the state is the wire's enum of the same values.
protocol VersionedWireEntity {
    associatedtype State: WireEnum
    var eTag: String? { get set }
    var lastModified: String? { get set }
    var creationTime: String? { get set }
    var state: State? { get set }
    var stateTransitionTime: String? { get set }
}

extension BatchPool: VersionedWireEntity {}

/// Jobs and tasks also keep the state before the current one.
protocol PreviousStateEntity: VersionedEntity {
    var previousState: State? { get }
    var previousStateTransitionTime: String? { get }
}

extension Job: PreviousStateEntity {}
extension JobTask: PreviousStateEntity {}

protocol PreviousStateWireEntity: VersionedWireEntity {
    var previousState: State? { get set }
    var previousStateTransitionTime: String? { get set }
}

extension BatchJob: PreviousStateWireEntity {}
extension BatchTask: PreviousStateWireEntity {}

extension VersionedWireEntity {
    /// Copies the entity's version and state; the state crosses by its value, so one the models do
    /// not know still reaches the client as the engine wrote it.
    mutating func setVersion(from entity: some VersionedEntity) {
        eTag = entity.eTag
        lastModified = entity.lastModified
        creationTime = entity.creationTime
        state = State(rawValue: entity.state.rawValue)
        stateTransitionTime = entity.stateTransitionTime
    }
}

extension PreviousStateWireEntity {
    /// The version and state, and the state before it.
    mutating func setStates(from entity: some PreviousStateEntity) {
        setVersion(from: entity)
        previousState = entity.previousState.map { State(rawValue: $0.rawValue) }
        previousStateTransitionTime = entity.previousStateTransitionTime
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

import Bookend
import Foundation

/// What a conditional request (§6.1) is checked against.
protocol Versioned: Sendable {
    var eTag: String { get }
    var lastModified: String { get }
}

extension Pool: Versioned {}
extension Job: Versioned {}

/// A task with its job: the task is what conditions check, the job's stored id is part of its URL.
struct TaskInJob: Versioned {
    let job: Job
    let task: JobTask
    var eTag: String { task.eTag }
    var lastModified: String { task.lastModified }
}

/// The one shape of every conditional write: fetch the entity, check `If-Match`, `If-None-Match`,
/// `If-Modified-Since`, `If-Unmodified-Since` against it (412 `ConditionNotMet`), mutate — the
/// mutation decodes the body, so a failed condition is reported before a malformed body — and answer
/// with the entity's `DataServiceId` and, while it still exists, its new `ETag` and `Last-Modified`.
struct ConditionalWrite<Entity: Versioned> {
    let request: APIRequest
    let fetch: () async throws -> Entity
    let url: (Entity) -> String

    /// An update or action; `suffix` names the action in `DataServiceId` (`/resize`).
    func run(_ status: Int, suffix: String = "", _ mutate: (Entity) async throws -> Void) async throws -> Reply {
        let before = try await checked()
        try await mutate(before)
        let after = try? await fetch()
        return Render.mutation(status, dataServiceID: url(after ?? before) + suffix, eTag: after?.eTag, lastModified: after?.lastModified)
    }

    /// A delete: the answer names what was deleted, with no ETag.
    func delete(_ status: Int, _ remove: (Entity) async throws -> Void) async throws -> Reply {
        let before = try await checked()
        try await remove(before)
        return Render.mutation(status, dataServiceID: url(before))
    }

    private func checked() async throws -> Entity {
        let entity = try await fetch()
        try Preconditions.checkWrite(request, eTag: entity.eTag, lastModified: entity.lastModified)
        return entity
    }
}

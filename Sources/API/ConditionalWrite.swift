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
///
/// A request that carries a condition holds its entity's `ConditionalWriteLocks` entry from the check
/// to the end of the mutation: otherwise twenty `PATCH`es with the same `If-Match`, sent at once,
/// all passed the check before the first one changed the ETag, and all succeeded (lost updates).
/// Requests without a condition do not wait for each other (nothing of theirs depends on a read).
struct ConditionalWrite<Entity: Versioned> {
    let request: APIRequest
    /// The entity's kind and id, as `ConditionalWriteLocks` keys them (ids compare case-insensitively).
    let key: String
    let fetch: () async throws -> Entity
    let url: (Entity) -> String

    /// An update or action; `suffix` names the action in `DataServiceId` (`/resize`).
    func run(_ status: Int, suffix: String = "", _ mutate: (Entity) async throws -> Void) async throws -> Reply {
        let before = try await locked { () async throws -> Entity in
            let before = try await checked()
            try await mutate(before)
            return before
        }
        let after = try? await fetch()
        return Render.mutation(status, dataServiceID: url(after ?? before) + suffix, eTag: after?.eTag, lastModified: after?.lastModified)
    }

    /// A delete: the answer names what was deleted, with no ETag.
    func delete(_ status: Int, _ remove: (Entity) async throws -> Void) async throws -> Reply {
        let before = try await locked { () async throws -> Entity in
            let before = try await checked()
            try await remove(before)
            return before
        }
        return Render.mutation(status, dataServiceID: url(before))
    }

    private func locked<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        guard Preconditions.present(request) else { return try await body() }
        let key = key.lowercased()
        await ConditionalWriteLocks.shared.acquire(key)
        do {
            let result = try await body()
            await ConditionalWriteLocks.shared.release(key)
            return result
        } catch {
            await ConditionalWriteLocks.shared.release(key)
            throw error
        }
    }

    private func checked() async throws -> Entity {
        let entity = try await fetch()
        try Preconditions.checkWrite(request, eTag: entity.eTag, lastModified: entity.lastModified)
        return entity
    }
}

/// One holder at a time per entity key, for conditional writes (`ConditionalWrite`); the others wait in
/// the order they came. Keys live only while held or waited for.
actor ConditionalWriteLocks {
    static let shared = ConditionalWriteLocks()

    private var waiting: [String: [CheckedContinuation<Void, Never>]] = [:]

    /// Returns once the caller holds `key`; every `acquire` is followed by one `release`.
    func acquire(_ key: String) async {
        if waiting[key] != nil {
            await withCheckedContinuation { waiting[key]!.append($0) }
        } else {
            waiting[key] = []
        }
    }

    /// Hands `key` to the next caller waiting for it, or lets it go.
    func release(_ key: String) {
        guard var queue = waiting[key] else { return }
        if queue.isEmpty {
            waiting[key] = nil
        } else {
            let next = queue.removeFirst()
            waiting[key] = queue
            next.resume()
        }
    }
}

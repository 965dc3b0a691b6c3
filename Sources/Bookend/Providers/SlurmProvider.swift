import Foundation
import Logging

/// Talks to Slurm for the engine: submits the allocations of new Slurm nodes, cancels those of
/// removed ones, and follows their states, on a thread of its own. Slurm's commands block until
/// slurmctld answers (seconds, or never while it is down), so the scheduling pass never calls them:
/// it hands this provider what it wants (`update`) and reads what was last observed (`snapshot`);
/// each round ends by waking the engine. While Slurm does not answer, rounds are retried with a
/// doubling wait (up to `SlurmSettings.maxBackoff`), the provider reports itself unavailable, and
/// nothing the engine recorded changes because of it.
final class SlurmProvider: @unchecked Sendable {
    /// An allocation a node still needs (no job id stored yet).
    struct Request: Hashable, Sendable {
        var nodePK: Int64
        /// `bookend-<pool>-<node>`: also how a submission whose answer was lost (a crash right after
        /// `sbatch`) is found again instead of submitted twice.
        var name: String
        var cpus: Int
        var partition: String?
    }

    /// One allocation as `squeue` last showed it.
    struct Allocation: Hashable, Sendable {
        /// Slurm's job state (`PENDING`, `RUNNING`, `CANCELLED`, ...).
        var state: String
        /// The Slurm node it runs on (empty while pending).
        var host: String
        /// Its job name: a restarted slurmctld that lost its state hands out the same job ids again,
        /// so an id is ours only while its name is the one we gave it.
        var name: String

        var isRunning: Bool { state == "RUNNING" }
        /// Ended: the node it backs is gone. Everything but pending/configuring/running/suspended.
        var isGone: Bool { !["PENDING", "CONFIGURING", "RUNNING", "SUSPENDED", "REQUEUED", "RESIZING"].contains(state) }
    }

    /// What the last rounds observed.
    struct Snapshot: Sendable {
        /// Completed rounds; a round that failed does not count.
        var generation = 0
        /// The last round reached Slurm.
        var available = true
        /// Why the last round failed: one message naming the command and Slurm's stderr.
        var error: String?
        /// Job ids `sbatch` answered (or a lookup by name found), by node.
        var submitted: [Int64: String] = [:]
        /// Allocations watched, by job id, as of the last round. A watched id missing here after a
        /// round is gone (purged from slurmctld's memory).
        var allocations: [String: Allocation] = [:]
        /// Job ids whose `scancel` succeeded.
        var released: Set<String> = []
        /// Ids that were watched in the last completed round.
        var watchedAtLastRound: Set<String> = []
        /// Why `sbatch` refused a node's allocation (a partition that does not exist, an account
        /// not allowed): Slurm answers, so only that node waits, and says why.
        var submitErrors: [Int64: String] = [:]

        func allocation(_ id: String) -> Allocation? {
            if let seen = allocations[id] { return seen }
            // Watched yet not listed by a round that succeeded: slurmctld no longer knows it.
            return watchedAtLastRound.contains(id) ? Allocation(state: "GONE", host: "", name: "") : nil
        }
    }

    let settings: SlurmSettings
    private let logger: Logger
    private let wake: @Sendable () -> Void
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var wanted: [Request] = []
    private var watched: Set<String> = []
    private var releases: Set<String> = []
    private var observed = Snapshot()
    private var poked = false
    private var stopping = false
    private var started = false
    private var lostSeen: [Int64: Int] = [:]
    /// When each refused submission may be tried again (only the provider's thread uses it).
    private var retryAfter: [Int64: ContinuousClock.Instant] = [:]
    /// How long a refused submission waits before it is tried again.
    static let refusedSubmissionRetry: Duration = .seconds(10)

    init(settings: SlurmSettings, logger: Logger, wake: @escaping @Sendable () -> Void) {
        self.settings = settings
        self.logger = logger
        self.wake = wake
    }

    /// What the engine wants now (replaces the previous wants). Starts the provider's thread the first
    /// time there is anything to do, so an engine with only local nodes never runs a Slurm command.
    func update(wanted: [Request], watched: Set<String>, releases: Set<String>) {
        condition.lock()
        defer { condition.unlock() }
        let changed = Set(wanted) != Set(self.wanted) || releases != self.releases || !watched.isSubset(of: self.watched)
        self.wanted = wanted
        self.watched = watched
        self.releases = releases
        if changed { poked = true; condition.signal() }
        guard !started, !stopping, !wanted.isEmpty || !watched.isEmpty || !releases.isEmpty else { return }
        started = true
        let thread = Thread { [self] in loop() }
        thread.name = "bookend.slurm"
        thread.start()
    }

    /// The latest observations.
    func snapshot() -> Snapshot {
        condition.lock()
        defer { condition.unlock() }
        return observed
    }

    /// Asks for a round now (an execution ended without its step's exit status: was the allocation lost?).
    func poke() {
        wakeLoop { poked = true }
    }

    /// Whether to hold back the loss of execution `pk` (its step ended with no exit status) until a
    /// round that began after the loss was seen has completed: if the allocation is gone, the node
    /// leaves first and the task is requeued onto another node, never back onto the dead one.
    func holdsLoss(_ pk: Int64) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let generation = observed.generation
        guard let first = lostSeen[pk] else {
            lostSeen[pk] = generation
            poked = true
            condition.signal()
            return true
        }
        if generation >= first + 2 {
            lostSeen[pk] = nil
            return false
        }
        return true
    }

    func stop() {
        wakeLoop { stopping = true }
    }

    /// Changes what the loop waits on, under the lock, and wakes it.
    private func wakeLoop(_ change: () -> Void) {
        condition.lock()
        change()
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        var backoff = settings.pollInterval
        var commands: SlurmCommands?
        while true {
            condition.lock()
            if !poked && !stopping { _ = condition.wait(until: Date().addingTimeInterval(SlurmProvider.seconds(backoff))) }
            poked = false
            let (wanted, watched, releases, stopping) = (self.wanted, self.watched, self.releases, self.stopping)
            let submitted = observed.submitted
            condition.unlock()
            if stopping { return }
            do {
                if commands == nil { commands = try SlurmCommands.find().get() }
                guard let commands else { continue }
                let round = try self.round(commands, wanted: wanted, submitted: submitted, watched: watched, releases: releases)
                condition.lock()
                let wasAvailable = observed.available
                for (pk, id) in round.submitted { observed.submitted[pk] = id }
                for (pk, message) in round.submitErrors where observed.submitErrors[pk] != message {
                    logger.error("Slurm refused the allocation of a node (retried every \(SlurmProvider.refusedSubmissionRetry)): \(message)")
                }
                // Kept while the node still waits for an allocation; gone once one was submitted.
                observed.submitErrors = observed.submitErrors.merging(round.submitErrors) { _, new in new }
                    .filter { pk, _ in round.submitted[pk] == nil && self.wanted.contains { $0.nodePK == pk } }
                // Ids the engine no longer asks for need no memory here.
                observed.submitted = observed.submitted.filter { pk, _ in self.wanted.contains { $0.nodePK == pk } || round.submitted[pk] != nil }
                observed.allocations = round.allocations
                observed.watchedAtLastRound = watched
                observed.released.formUnion(round.released)
                observed.released.formIntersection(self.releases.union(round.released))
                observed.generation += 1
                observed.available = true
                observed.error = nil
                condition.unlock()
                if !wasAvailable { logger.notice("Slurm answers again") }
                backoff = settings.pollInterval
            } catch {
                condition.lock()
                let wasAvailable = observed.available
                observed.available = false
                observed.error = "\(error)"
                condition.unlock()
                if wasAvailable {
                    logger.error("Slurm is unavailable (retrying with backoff; no work is failed or rerun for it): \(error)")
                } else {
                    logger.debug("Slurm still unavailable: \(error)")
                }
                backoff = min(backoff * 2, settings.maxBackoff)
            }
            wake()
        }
    }

    private struct Round {
        var submitted: [Int64: String] = [:]
        var allocations: [String: Allocation] = [:]
        var released: Set<String> = []
        var submitErrors: [Int64: String] = [:]
    }

    /// One round: submit what is wanted, cancel what is released, list every allocation of ours.
    private func round(
        _ commands: SlurmCommands, wanted: [Request], submitted: [Int64: String], watched: Set<String>, releases: Set<String>
    ) throws -> Round {
        var round = Round()
        var listing = try list(commands)
        for request in wanted where submitted[request.nodePK] == nil {
            // A submission whose answer never got stored (a crash after sbatch) is found by its name.
            if let existing = listing.first(where: { $0.name == request.name && !$0.allocation.isGone }) {
                round.submitted[request.nodePK] = existing.id
                continue
            }
            // --no-requeue: an allocation Slurm would start again (after a node failure, or a slurmctld
            // that lost its state) is a new machine whose steps are gone; the node leaves instead.
            var arguments = [commands.sbatch, "--parsable", "--no-requeue", "--nodes=1", "--ntasks=1", "--cpus-per-task=\(request.cpus)",
                "--job-name=\(request.name)", "--output=/dev/null", "--error=/dev/null"]
            if let partition = request.partition { arguments.append("--partition=\(partition)") }
            if let account = settings.account { arguments.append("--account=\(account)") }
            if let qos = settings.qos { arguments.append("--qos=\(qos)") }
            arguments += ["--wrap", "exec sleep infinity"]
            if let after = retryAfter[request.nodePK], ContinuousClock.now < after { continue }
            // `--parsable` prints `id` or `id;cluster`.
            let answer: String
            do {
                answer = try commands.run(arguments).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                // slurmctld answered the listing above: this request itself is refused. Other nodes
                // go on; this one says why and is tried again later.
                round.submitErrors[request.nodePK] = error.description
                retryAfter[request.nodePK] = ContinuousClock.now + SlurmProvider.refusedSubmissionRetry
                continue
            }
            retryAfter[request.nodePK] = nil
            guard let id = answer.split(separator: ";").first.map(String.init), !id.isEmpty else {
                throw SlurmCommandError(command: arguments, status: 0, stderr: "no job id in the answer \(answer.debugDescription)")
            }
            round.submitted[request.nodePK] = id
            logger.info("Slurm allocation \(id) submitted for \(request.name)")
        }
        for id in releases.sorted() {
            _ = try commands.run([commands.scancel, id])
            round.released.insert(id)
            logger.info("Slurm allocation \(id) cancelled")
        }
        if !round.submitted.isEmpty || !round.released.isEmpty { listing = try list(commands) }
        for entry in listing where watched.contains(entry.id) || round.submitted.values.contains(entry.id) {
            round.allocations[entry.id] = entry.allocation
        }
        return round
    }

    private struct Listed {
        var id: String
        var name: String
        var allocation: Allocation
    }

    /// Every job of this user slurmctld still knows, finished ones included.
    private func list(_ commands: SlurmCommands) throws -> [Listed] {
        let output = try commands.run([commands.squeue, "--noheader", "--me", "--states=all", "--format=%i|%T|%N|%j"])
        return output.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "|", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
            guard fields.count == 4 else { return nil }
            return Listed(id: fields[0], name: fields[3], allocation: Allocation(state: fields[1], host: fields[2], name: fields[3]))
        }
    }
}

extension SlurmProvider {
    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

import CoreMetrics
import Foundation

/// How an engine runs. Every field has a default that suits a single machine.
public struct EngineConfiguration: Sendable {
    /// The account name tasks see in `AZ_BATCH_ACCOUNT_NAME` (and the daemon authenticates).
    public var accountName: String
    /// The account URL tasks see in `AZ_BATCH_ACCOUNT_URL`.
    public var accountURL: String
    /// Where node folders live; `nil` means `<data-dir>/nodes`. When the engine runs as root, every
    /// folder above it must be searchable by other accounts, since non-admin tasks run under their own
    /// uids (see `Engine.open`).
    public var nodesDirectory: String?
    /// `PRAGMA synchronous`: `.full` (default) keeps every acknowledged change through a power cut.
    public var synchronous: SynchronousLevel
    /// How often the scheduler looks at clocks (wall-clock limits, retention) when nothing else wakes it.
    public var tickInterval: Duration
    /// How long a process group has between SIGTERM and SIGKILL when Bookend ends it.
    public var killGracePeriod: Duration
    /// When the engine shuts down: leave running executions for the next start to adopt (default), or
    /// wait for them up to a deadline.
    public var drainOnShutdown: Duration?
    /// How many times a task (or a preparation, release or start task on a node) is run again after
    /// its process vanished without an exit status; the next loss fails it with `ExecutionLostTooOften`.
    public var maxLostExecutionRequeues: Int
    /// Where the engine's counters and histograms go (scheduler pass, commit and launch durations,
    /// completions, recovery). `nil` uses `MetricsSystem.factory`; `BookendMetrics.factory` (module
    /// `Observability`) collects them for `GET /metrics`.
    public var metricsFactory: (any MetricsFactory)?
    /// Free space to keep on the node folders' file system. Below it, the engine deletes completed
    /// executions' folders before their retention deadline (those past it first, then the oldest
    /// completed), never the folder of one that runs or may run again. `nil`: only retention deadlines
    /// delete folders.
    public var minFreeDisk: DiskSpace?
    /// How long the history of a deleted job (its events) is kept after the deletion; `nil` keeps it
    /// forever. The default, 7 days, is Azure Batch's default `retentionTime` for a task's files: a
    /// deleted job's history lasts as long as its task folders would have.
    public var historyRetention: Duration?
    /// Where new nodes run when their pool's metadata does not say (`bookend.nodeProvider`): `.local`
    /// (folders and processes on this machine, the default) or `.slurm` (see docs/slurm.md).
    public var nodeProvider: NodeProviderKind
    /// How Slurm-backed nodes are asked for (partition, account, QOS, polling).
    public var slurm: SlurmSettings

    /// How long a job release task may run, and how long one without its own `maxWallClockTime` gets:
    /// Azure Batch's 15 minutes. Only tests shorten it, to see the cap enforced without waiting 15
    /// minutes; the validation message and the stored `maxWallClockTime` follow it.
    public var releaseWallClockCap: Duration = .seconds(Engine.releaseWallClockCap / 1000)

    /// When the engine is root: the most processes and threads one task account (a pool's, or a
    /// task's with scope `task`) may hold at once on this machine, `RLIMIT_NPROC` of every non-admin
    /// command. A fork bomb in a task then stops at this many, and the engine, admin work and other
    /// accounts keep the rest of the machine's pids. `nil`: no cap of Bookend's own. The default is
    /// `defaultTaskProcessLimit()`.
    public var taskProcessLimit: Int? = EngineConfiguration.defaultTaskProcessLimit()

    /// As root: the file in which every data directory on this machine claims the uid blocks its task
    /// accounts come from, so that no two hand out the same uid (`TaskAccounts.Registry`). nil: pick
    /// blocks at random, as before the registry (1 chance in 12,288 per pair of data directories of
    /// sharing one).
    public var taskUIDRegistry: String? = TaskAccounts.Registry.defaultPath

    /// 15 % of the machine's process ceiling, the smaller of `kernel.pid_max` and
    /// `kernel.threads-max` (the share systemd gives a service by default, `DefaultTasksMax`), and
    /// at least 512: 4,915 with Linux's default 32,768 pids. It takes six accounts at their cap to
    /// hold nine tenths of the machine's pids.
    public static func defaultTaskProcessLimit(
        pidMax: Int? = EngineConfiguration.kernelSetting("pid_max"), threadsMax: Int? = EngineConfiguration.kernelSetting("threads-max")
    ) -> Int {
        let ceiling = [pidMax, threadsMax].compactMap { $0 }.filter { $0 > 0 }.min() ?? 32_768
        return max(512, ceiling * 15 / 100)
    }

    /// A number from `/proc/sys/kernel/<name>`, or nil.
    public static func kernelSetting(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/sys/kernel/" + name, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Refuses values the engine cannot run with, before anything opens: a tick interval of zero or
    /// less had the pass timer fire without pause (a core spent for nothing), and negative counts and
    /// durations have no meaning.
    public func validate() throws {
        func refuse(_ message: String) -> BookendError {
            BookendError(.invalidRequest, "InvalidEngineConfiguration", message)
        }
        if tickInterval <= .zero { throw refuse("tickInterval must be more than zero, not \(tickInterval)") }
        if killGracePeriod < .zero { throw refuse("killGracePeriod must be zero or more, not \(killGracePeriod)") }
        if let drainOnShutdown, drainOnShutdown < .zero { throw refuse("drainOnShutdown must be zero or more, not \(drainOnShutdown)") }
        if maxLostExecutionRequeues < 0 { throw refuse("maxLostExecutionRequeues must be zero or more, not \(maxLostExecutionRequeues)") }
        if let historyRetention, historyRetention < .zero { throw refuse("historyRetention must be zero or more (nil keeps history forever), not \(historyRetention)") }
        if releaseWallClockCap <= .zero { throw refuse("releaseWallClockCap must be more than zero, not \(releaseWallClockCap)") }
        if let taskProcessLimit, taskProcessLimit < 1 { throw refuse("taskProcessLimit must be at least 1 (nil: no cap), not \(taskProcessLimit)") }
    }

    /// The default `historyRetention`: 7 days.
    public static let defaultHistoryRetention: Duration = .seconds(7 * 86_400)

    public enum SynchronousLevel: String, Sendable { case normal, full }

    public init(
        accountName: String = "bookend", accountURL: String = "http://127.0.0.1:8080/", nodesDirectory: String? = nil,
        synchronous: SynchronousLevel = .full, tickInterval: Duration = .milliseconds(100),
        killGracePeriod: Duration = .seconds(3), drainOnShutdown: Duration? = nil, maxLostExecutionRequeues: Int = 3,
        metricsFactory: (any MetricsFactory)? = nil,
        minFreeDisk: DiskSpace? = nil, historyRetention: Duration? = EngineConfiguration.defaultHistoryRetention,
        nodeProvider: NodeProviderKind = .local, slurm: SlurmSettings = SlurmSettings()
    ) {
        self.nodeProvider = nodeProvider
        self.slurm = slurm
        self.metricsFactory = metricsFactory
        self.accountName = accountName
        self.accountURL = accountURL
        self.nodesDirectory = nodesDirectory
        self.synchronous = synchronous
        self.tickInterval = tickInterval
        self.killGracePeriod = killGracePeriod
        self.drainOnShutdown = drainOnShutdown
        self.maxLostExecutionRequeues = maxLostExecutionRequeues
        self.minFreeDisk = minFreeDisk
        self.historyRetention = historyRetention
    }
}

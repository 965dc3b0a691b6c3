import Foundation

/// Where a node's work runs. The scheduling rules (preparation and release, slots, spread/pack,
/// retries, requeues, retention, recovery) are the same for every provider; only acquiring and
/// releasing a node, launching an execution on it, cancelling it and finding it again differ.
///
/// - `local`: the node is a folder on this machine and its executions are processes here (the
///   behaviour before providers existed, and the default).
/// - `slurm`: the node is one Slurm allocation (`sbatch … --wrap 'sleep infinity'`) holding
///   `taskSlotsPerNode` CPUs on one Slurm node; each execution is a job step in it, run by `srun`
///   under the shim on this machine (see `SlurmProvider` and docs/slurm.md).
public enum NodeProviderKind: String, Sendable, Hashable, CaseIterable, Codable {
    case local
    case slurm

    /// Pool metadata naming a pool's provider, settable unchanged by the official SDKs and `az batch`.
    public static let metadataName = "bookend.nodeProvider"
    /// Pool metadata naming the Slurm partition of a pool's allocations.
    public static let partitionMetadataName = "bookend.slurm.partition"
}

/// How a Slurm-backed node is asked for. Slurm's own commands (`sbatch`, `squeue`, `scancel`,
/// `srun`) are found on the daemon's `PATH` and read `SLURM_CONF` as they do for any user.
public struct SlurmSettings: Sendable, Hashable {
    /// The partition of new allocations when a pool names none; nil: the cluster's default partition.
    public var partition: String?
    /// `sbatch --account`, if set.
    public var account: String?
    /// `sbatch --qos`, if set.
    public var qos: String?
    /// How often allocations are looked at (`squeue`) while nothing else asks.
    public var pollInterval: Duration
    /// The longest wait between retries while Slurm does not answer (the wait doubles up to it).
    public var maxBackoff: Duration
    /// Where Slurm nodes' folders live (a file system the engine's machine and the Slurm nodes
    /// share); nil: with the local nodes (`EngineConfiguration.nodesDirectory`).
    public var nodeRoot: String?

    public init(
        partition: String? = nil, account: String? = nil, qos: String? = nil,
        pollInterval: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(8), nodeRoot: String? = nil
    ) {
        self.nodeRoot = nodeRoot
        self.partition = partition
        self.account = account
        self.qos = qos
        self.pollInterval = pollInterval
        self.maxBackoff = maxBackoff
    }
}

/// Which provider (and partition) a new node of a pool gets: the pool's metadata, else the engine's
/// defaults. Pure, so it is tested as a table.
struct NodeProviderChoice: Hashable, Sendable {
    var provider: NodeProviderKind
    var partition: String?

    static func choose(metadata: [MetadataItem], defaultProvider: NodeProviderKind, defaultPartition: String?) -> NodeProviderChoice {
        let named = metadata.last { $0.name == NodeProviderKind.metadataName }.flatMap { NodeProviderKind(rawValue: $0.value.lowercased()) }
        let provider = named ?? defaultProvider
        switch provider {
        case .local:
            return NodeProviderChoice(provider: .local, partition: nil)
        case .slurm:
            let partition = metadata.last { $0.name == NodeProviderKind.partitionMetadataName }?.value
            return NodeProviderChoice(provider: .slurm, partition: partition.flatMap { $0.isEmpty ? nil : $0 } ?? defaultPartition)
        }
    }

    /// A pool's metadata may name only a provider this engine knows.
    static func validate(_ metadata: [MetadataItem]?) throws(BookendError) {
        for item in metadata ?? [] where item.name == NodeProviderKind.metadataName {
            guard NodeProviderKind(rawValue: item.value.lowercased()) != nil else {
                throw BookendError.invalidProperty("metadata", item.value,
                    "\(NodeProviderKind.metadataName) must be one of \(NodeProviderKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
    }
}

import Testing
import TestSupport
@testable import Bookend

/// Which provider and partition a new node gets: the pool's metadata first, then the engine's defaults.
struct NodeProviderTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var metadata: [MetadataItem]
        var defaultProvider: NodeProviderKind
        var defaultPartition: String?
        var expected: NodeProviderChoice
        var testDescription: String { "\(metadata.map { "\($0.name)=\($0.value)" }) default \(defaultProvider) → \(expected.provider) \(expected.partition ?? "-")" }
    }

    static let provider = NodeProviderKind.metadataName
    static let partition = NodeProviderKind.partitionMetadataName

    static let cases: [Case] = [
        Case(metadata: [], defaultProvider: .local, defaultPartition: "batch", expected: .init(provider: .local, partition: nil)),
        Case(metadata: [], defaultProvider: .slurm, defaultPartition: nil, expected: .init(provider: .slurm, partition: nil)),
        Case(metadata: [], defaultProvider: .slurm, defaultPartition: "batch", expected: .init(provider: .slurm, partition: "batch")),
        Case(metadata: [.init(name: provider, value: "slurm")], defaultProvider: .local, defaultPartition: nil,
            expected: .init(provider: .slurm, partition: nil)),
        Case(metadata: [.init(name: provider, value: "SLURM"), .init(name: partition, value: "gpu")], defaultProvider: .local,
            defaultPartition: "batch", expected: .init(provider: .slurm, partition: "gpu")),
        Case(metadata: [.init(name: provider, value: "local"), .init(name: partition, value: "gpu")], defaultProvider: .slurm,
            defaultPartition: "batch", expected: .init(provider: .local, partition: nil)),
        // An empty partition is no partition: the default applies.
        Case(metadata: [.init(name: partition, value: "")], defaultProvider: .slurm, defaultPartition: "batch",
            expected: .init(provider: .slurm, partition: "batch")),
        // The last item of a name wins, as for any repeated metadata.
        Case(metadata: [.init(name: provider, value: "slurm"), .init(name: provider, value: "local")], defaultProvider: .slurm,
            defaultPartition: nil, expected: .init(provider: .local, partition: nil)),
    ]

    @Test(arguments: cases)
    func aNewNodeGetsThePoolsProviderElseTheDefault(_ c: Case) {
        #expect(NodeProviderChoice.choose(metadata: c.metadata, defaultProvider: c.defaultProvider, defaultPartition: c.defaultPartition)
            == c.expected)
    }

    @Test(arguments: ["local", "slurm", "Slurm"])
    func knownProvidersAreAccepted(_ value: String) throws {
        try NodeProviderChoice.validate([MetadataItem(name: NodeProviderKind.metadataName, value: value)])
    }

    @Test(arguments: ["", "kubernetes", "slurm "])
    func anUnknownProviderIsRefused(_ value: String) {
        #expect(throws: BookendError.self) {
            try NodeProviderChoice.validate([MetadataItem(name: NodeProviderKind.metadataName, value: value)])
        }
    }

    @Test func aPoolAskingForAnUnknownProviderIsNotCreatedAndLocalNodesStayLocal() async throws {
        let h = try await EngineHarness.make()
        try await withCleanup({ await h.finish() }) {
            var spec = PoolSpec(id: "cloudy", targetDedicatedNodes: 1)
            spec.metadata = [MetadataItem(name: NodeProviderKind.metadataName, value: "cloud")]
            await #expect(throws: BookendError.self) { try await h.engine.createPool(spec) }
            #expect(try await h.engine.pools().isEmpty)
            // The default provider is local: a node is a folder here, with no allocation.
            let node = try #require(try await h.pool().first)
            #expect(try await h.sql("SELECT provider, slurm_job_id IS NULL, ip_address FROM node WHERE id = '\(node.id)'")
                == [["local", "1", "127.0.0.1"]])
        }
    }
}

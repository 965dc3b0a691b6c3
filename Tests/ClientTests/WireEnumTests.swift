import BatchModels
import Client
import Foundation
import Testing

/// The wire enums: every known value round-trips, any other value survives as `.unrecognized`, and
/// input is matched case-insensitively but always encoded lowercase.
@Suite struct WireEnumTests {
    static let enums: [any WireEnum.Type] = [
        BatchPoolState.self, AllocationState.self, BatchNodeState.self, SchedulingState.self, BatchJobState.self,
        BatchTaskState.self, BatchStartTaskState.self, BatchJobPreparationTaskState.self, BatchJobReleaseTaskState.self,
        BatchTaskExecutionResult.self, ErrorCategory.self, BatchTaskAddStatus.self, OnAllBatchTasksComplete.self,
        OnBatchTaskFailure.self, BatchJobAction.self, DependencyAction.self, DisableBatchJobOption.self,
        BatchNodeRebootOption.self, BatchNodeFillType.self, AutoUserScope.self,
        ElevationLevel.self, BookendWaitState.self,
    ]

    @Test(arguments: enums) func knownValuesRoundTripAndOthersSurvive(_ type: any WireEnum.Type) throws {
        try check(type)
    }

    func check<E: WireEnum>(_: E.Type) throws {
        #expect(!E.known.isEmpty)
        for value in E.known {
            #expect(value.rawValue == value.rawValue.lowercased())
            #expect(try decode(E.self, "\"\(value.rawValue)\"") == value)
            #expect(try decode(E.self, "\"\(value.rawValue.uppercased())\"") == value)
            #expect(try encode(value) == "\"\(value.rawValue)\"")
        }
        #expect(Set(E.known.map(\.rawValue)).count == E.known.count, "two cases share a wire value")
        let future = try decode(E.self, "\"addedNextYear\"")
        #expect(future == .unrecognized("addedNextYear"))
        #expect(!future.isKnown)
        #expect(try encode(future) == "\"addedNextYear\"")
    }

    func decode<E: WireEnum>(_: E.Type, _ json: String) throws -> E {
        try JSONDecoder().decode(E.self, from: Data(json.utf8))
    }

    func encode<E: WireEnum>(_ value: E) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    /// What a newer server might send: a state this client does not know and a property it has no
    /// field for. The response still decodes; the unknown state is kept.
    @Test func aNewerServersPoolStillDecodes() throws {
        let json = #"{"id":"p","state":"upgrading","allocationState":"steady","futureProperty":{"x":1},"targetDedicatedNodes":2}"#
        let pool = try JSONDecoder().decode(BatchPool.self, from: Data(json.utf8))
        #expect(pool.state == .unrecognized("upgrading"))
        #expect(pool.allocationState == .steady)
        #expect(pool.targetDedicatedNodes == 2)
    }

    /// Absent properties are left out, not sent as null; names with a dot keep it.
    @Test func encodingOmitsAbsentPropertiesAndKeepsODataNames() throws {
        var pool = BatchPool(id: "p")
        pool.targetDedicatedNodes = 1
        let page = BatchPoolList(value: [pool], odataNextLink: "http://h/pools?$skiptoken=x")
        let text = String(decoding: try BatchJSON.encode(page), as: UTF8.self)
        #expect(text == #"{"odata.nextLink":"http://h/pools?$skiptoken=x","value":[{"id":"p","targetDedicatedNodes":1}]}"#)
    }
}

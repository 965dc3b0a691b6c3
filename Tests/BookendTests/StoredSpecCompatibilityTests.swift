@testable import Bookend
import Foundation
import SQLite
import Testing

/// The engine's environment settings, metadata, constraints, dependencies and affinity are the wire's
/// own types (`BatchModels`) since the engine stopped declaring copies of them. Spec JSON that earlier
/// builds stored, in the bytes `encodeJSON` wrote (sorted keys), must still load, and load the same.
@Suite struct StoredSpecCompatibilityTests {
    /// A task spec as the earlier build stored it, with every moved sub-shape present.
    static let storedTask = #"""
        {"affinityInfo":{"affinityId":"TVM:tvmps_1_d"},"commandLine":"/bin/true","dependsOn":{"taskIdRanges":[{"end":3,"start":1}],"taskIds":["a"]},"environmentSettings":[{"name":"A","value":"1"},{"name":"B"}],"id":"t","userIdentity":{"autoUser":{"elevationLevel":"nonadmin","scope":"pool"}}}
        """#

    @Test func aTaskSpecStoredByTheEarlierBuildLoadsUnchanged() throws {
        let spec = try JSONDecoder().decode(TaskSpec.self, from: Data(Self.storedTask.utf8))
        #expect(spec.environmentSettings == [EnvironmentSetting(name: "A", value: "1"), EnvironmentSetting(name: "B", value: nil)])
        #expect(spec.dependsOn?.taskIds == ["a"])
        #expect(spec.dependsOn?.taskIdRanges == [TaskIDRange(start: 1, end: 3)])
        #expect(spec.affinityInfo?.affinityId == "TVM:tvmps_1_d")
        // Written again, it is the same bytes: a row rewritten by this build reads the same to the earlier one.
        #expect(encodeJSON(spec) == Self.storedTask)
    }

    @Test func aJobStoredByTheEarlierBuildLoadsThroughTheEngine() throws {
        let data = try MigratedDirectory()
        let db = data.connection
        let now = "2026-01-02T03:04:05.678Z"
        try db.run(
            """
            INSERT INTO job (id, pool_id, priority, max_parallel_tasks, allow_task_preemption, max_task_retry_count,
                on_all_tasks_complete, on_task_failure, uses_task_dependencies, job_preparation_task, common_environment_settings,
                metadata, spec, state, creation_time, last_modified, state_transition_time, e_tag)
            VALUES ('job', 'pool', 0, -1, 0, 0, 'noaction', 'noaction', 1, ?, ?, ?, '{}', 'active', ?, ?, ?, '0x1')
            """,
            [#"{"commandLine":"/bin/true","constraints":{"maxTaskRetryCount":0,"maxWallClockTime":"PT1M","retentionTime":"P7D"},"environmentSettings":[{"name":"P","value":"2"}],"id":"jobpreparation","rerunOnNodeRebootAfterSuccess":true,"waitForSuccess":true}"#,
             #"[{"name":"C","value":"3"}]"#, #"[{"name":"owner","value":"me"}]"#, now, now, now])
        let row = try #require(db.query("SELECT * FROM job WHERE id = 'job'").first)
        let preparation = try #require(try row.json(JobPreparationTask.self, "job_preparation_task", table: "job"))
        #expect(preparation.constraints == TaskConstraints(maxWallClockTime: "PT1M", retentionTime: "P7D", maxTaskRetryCount: 0))
        #expect(preparation.environmentSettings == [EnvironmentSetting(name: "P", value: "2")])
        #expect(try row.json([EnvironmentSetting].self, "common_environment_settings", table: "job") == [EnvironmentSetting(name: "C", value: "3")])
        #expect(try row.json([MetadataItem].self, "metadata", table: "job") == [MetadataItem(name: "owner", value: "me")])
    }
}

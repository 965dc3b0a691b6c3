@testable import API
import BatchModels
import Foundation
import TestSupport
import Testing

/// The task and job types that write their own JSON (`DirectJSON`) must give exactly the bytes their
/// `Encodable` conformance gives through `JSONBytesEncoder`: same members, same order, same escaping.
@Suite struct DirectJSONTests {
    /// Every optional member set, in every type that writes itself; `everyMemberIsSet` keeps it so,
    /// which means a property added to a model fails here until the writer and this value know it.
    static let full: BatchTask = {
        var task = BatchTask(id: "task-\"1\"")
        task.odataMetadata = "http://h/$metadata#tasks/@Element"
        task.displayName = "name with \\ and \n and \u{01} and é ✓"
        task.url = "http://h/jobs/j/tasks/t"
        task.eTag = "0x8D"
        task.lastModified = "2026-11-30T18:25:16.726Z"
        task.creationTime = "2026-11-30T18:25:16.725Z"
        task.exitConditions = ExitConditions(exitCodes: [ExitCodeMapping(code: 3, exitOptions: ExitOptions(jobAction: .terminate))])
        task.state = .completed
        task.stateTransitionTime = "2026-11-30T18:25:17.000Z"
        task.previousState = .running
        task.previousStateTransitionTime = "2026-11-30T18:25:16.900Z"
        task.commandLine = "/bin/sh -c 'echo \"hi\"'"
        task.containerSettings = .object(["imageName": .string("busybox"), "b": .bool(true)])
        task.resourceFiles = [ResourceFile(httpUrl: "http://x/f", filePath: "f")]
        task.outputFiles = .array([.object(["filePattern": .string("*.txt")])])
        task.environmentSettings = [EnvironmentSetting(name: "A", value: "1"), EnvironmentSetting(name: "B", value: "")]
        task.affinityInfo = AffinityInfo(affinityId: "TVM:n1")
        task.constraints = BatchTaskConstraints(maxWallClockTime: "PT1H", retentionTime: "P7D", maxTaskRetryCount: -1)
        task.requiredSlots = 2
        task.userIdentity = UserIdentity(username: "u", autoUser: AutoUserSpecification(scope: .task, elevationLevel: .admin))
        task.multiInstanceSettings = .object(["numberOfInstances": .number(2)])
        task.executionInfo = BatchTaskExecutionInfo(
            startTime: "2026-11-30T18:25:16.800Z", endTime: "2026-11-30T18:25:17.000Z", exitCode: -9,
            containerInfo: .object(["state": .string("x")]),
            failureInfo: BatchTaskFailureInfo(category: .userError, code: "FailureExitCode", message: "m \"q\"",
                details: [NameValuePair(name: "k", value: "v"), NameValuePair(name: "k2", value: "v2")]),
            retryCount: 1, lastRetryTime: "2026-11-30T18:25:16.850Z", requeueCount: 0, lastRequeueTime: "2026-11-30T18:25:16.700Z",
            result: .failure)
        task.nodeInfo = BatchNodeInfo(affinityId: "TVM:n1", nodeUrl: "http://h/pools/p/nodes/n1", poolId: "p", nodeId: "n1",
            taskRootDirectory: "workitems/j/job-1/t", taskRootDirectoryUrl: "http://h/pools/p/nodes/n1/files/workitems/j/job-1/t")
        task.dependsOn = BatchTaskDependencies(taskIds: ["a", "b"])
        task.applicationPackageReferences = .array([])
        task.stats = .object(["wallClockTime": .string("PT1S")])
        task.bookendWaitReason = BookendWaitReason(state: .waiting, code: "NoNode", message: "no node",
            failedPreparations: [BookendFailedPreparation(nodeId: "n2", exitCode: nil, failureInfo: nil, stderrTail: nil)], dependencyId: "dep")
        return task
    }()

    /// Optional members of `value` (and of the nested types that write themselves) that are nil.
    static func unsetMembers(_ value: Any, path: String = "") -> [String] {
        var unset: [String] = []
        for child in Mirror(reflecting: value).children {
            let name = path + (child.label ?? "?")
            let inner = Mirror(reflecting: child.value)
            if inner.displayStyle == .optional {
                guard let wrapped = inner.children.first?.value else { unset.append(name); continue }
                if wrapped is any DirectJSON { unset += unsetMembers(wrapped, path: name + ".") }
                if let list = wrapped as? [any DirectJSON] { for item in list { unset += unsetMembers(item, path: name + "[].") } }
            }
        }
        return unset
    }

    @Test func everyMemberIsSet() {
        #expect(Self.unsetMembers(Self.full) == [])
    }

    static func bothWays(_ value: some Encodable, select: Set<String>? = nil) throws -> (direct: String, encoder: String) {
        var direct: [UInt8] = Array("[".utf8)  // not at the start of the buffer, as in a page
        try JSONBytesEncoder.encode(value, select: select, into: &direct)
        var encoder: [UInt8] = Array("[".utf8)
        try JSONBytesEncoder.encodeThroughEncoder(value, select: select, into: &encoder)
        return (String(decoding: direct, as: UTF8.self), String(decoding: encoder, as: UTF8.self))
    }

    @Test func aTaskWithEveryMemberSetIsWrittenAsTheEncoderWritesIt() throws {
        let (direct, encoder) = try Self.bothWays(Self.full)
        #expect(direct == encoder)
        #expect(direct.contains(#""bookendWaitReason":{"#))
    }

    /// Members cleared at random (seeded, so a failure replays), with and without `$select`.
    @Test(arguments: 0..<40)
    func tasksWithMembersLeftOutAreWrittenAsTheEncoderWritesThem(seed: Int) throws {
        var random = SplitMix64(seed: UInt64(seed))
        var task = Self.full
        func maybe<T>(_ value: inout T?) { if random.next() % 2 == 0 { value = nil } }
        // The nested values first, then the task's own members (which may drop a nested value whole).
        var constraints = task.constraints!
        maybe(&constraints.maxWallClockTime); maybe(&constraints.retentionTime); maybe(&constraints.maxTaskRetryCount)
        task.constraints = constraints
        var autoUser = task.userIdentity!.autoUser!
        maybe(&autoUser.scope); maybe(&autoUser.elevationLevel)
        var identity = task.userIdentity!
        identity.autoUser = autoUser
        maybe(&identity.username); maybe(&identity.autoUser)
        task.userIdentity = identity
        var failure = task.executionInfo!.failureInfo!
        if random.next() % 2 == 0 { failure.details?.append(NameValuePair(name: "no value")) }
        maybe(&failure.category); maybe(&failure.code); maybe(&failure.message); maybe(&failure.details)
        var execution = task.executionInfo!
        execution.failureInfo = failure
        maybe(&execution.startTime); maybe(&execution.endTime); maybe(&execution.exitCode); maybe(&execution.containerInfo)
        maybe(&execution.failureInfo); maybe(&execution.retryCount); maybe(&execution.lastRetryTime); maybe(&execution.requeueCount)
        maybe(&execution.lastRequeueTime); maybe(&execution.result)
        task.executionInfo = execution
        var node = task.nodeInfo!
        maybe(&node.affinityId); maybe(&node.nodeUrl); maybe(&node.poolId); maybe(&node.nodeId); maybe(&node.taskRootDirectory)
        maybe(&node.taskRootDirectoryUrl)
        task.nodeInfo = node
        maybe(&task.odataMetadata); maybe(&task.displayName); maybe(&task.url); maybe(&task.eTag); maybe(&task.lastModified)
        maybe(&task.creationTime); maybe(&task.exitConditions); maybe(&task.state); maybe(&task.stateTransitionTime)
        maybe(&task.previousState); maybe(&task.previousStateTransitionTime); maybe(&task.commandLine); maybe(&task.containerSettings)
        maybe(&task.resourceFiles); maybe(&task.outputFiles); maybe(&task.environmentSettings); maybe(&task.affinityInfo)
        maybe(&task.constraints); maybe(&task.requiredSlots); maybe(&task.userIdentity); maybe(&task.multiInstanceSettings)
        maybe(&task.executionInfo); maybe(&task.nodeInfo); maybe(&task.dependsOn); maybe(&task.applicationPackageReferences)
        maybe(&task.stats); maybe(&task.bookendWaitReason)
        if random.next() % 2 == 0 { task.environmentSettings?.append(EnvironmentSetting(name: "NO_VALUE")) }
        if random.next() % 3 == 0 { task.environmentSettings = [] }
        if random.next() % 3 == 0 { task.state = .unrecognized("SomeNewState") }

        let (direct, encoder) = try Self.bothWays(task)
        #expect(direct == encoder, "seed \(seed)")
        let names = ["id", "url", "state", "executionInfo", "nodeInfo", "constraints", "odata.metadata", "nothing", "exitConditions"]
        let select = Set(names.filter { _ in random.next() % 2 == 0 })
        let (selectedDirect, selectedEncoder) = try Self.bothWays(task, select: select)
        #expect(selectedDirect == selectedEncoder, "seed \(seed), $select \(select.sorted())")
    }

    static let fullJob: BatchJob = {
        let task = DirectJSONTests.full
        var job = BatchJob(id: "job-\"1\"")
        job.odataMetadata = "http://h/$metadata#jobs/@Element"
        job.displayName = "a job ✓ \u{02}"
        job.usesTaskDependencies = true
        job.url = "http://h/jobs/j"
        job.eTag = "0x8E"
        job.lastModified = "2026-11-30T18:25:16.726Z"
        job.creationTime = "2026-11-30T18:25:16.725Z"
        job.state = .terminating
        job.stateTransitionTime = "2026-11-30T18:25:17.000Z"
        job.previousState = .active
        job.previousStateTransitionTime = "2026-11-30T18:25:16.900Z"
        job.priority = -5
        job.allowTaskPreemption = false
        job.maxParallelTasks = 4
        job.constraints = BatchJobConstraints(maxWallClockTime: "PT2H", maxTaskRetryCount: 3)
        job.jobManagerTask = BatchJobManagerTask(id: "m", commandLine: "/bin/true")
        job.jobPreparationTask = BatchJobPreparationTask(
            id: "prep", commandLine: "/bin/sh -c 'echo \"prep\"'", containerSettings: ["imageName": .string("x")],
            resourceFiles: task.resourceFiles, environmentSettings: task.environmentSettings, constraints: task.constraints,
            waitForSuccess: true, userIdentity: task.userIdentity, rerunOnNodeRebootAfterSuccess: false)
        job.jobReleaseTask = BatchJobReleaseTask(
            id: "release", commandLine: "/bin/echo done", containerSettings: [:], resourceFiles: task.resourceFiles,
            environmentSettings: task.environmentSettings, maxWallClockTime: "PT15M", retentionTime: "P1D", userIdentity: task.userIdentity)
        job.commonEnvironmentSettings = [EnvironmentSetting(name: "COMMON", value: "1")]
        job.poolInfo = BatchPoolInfo(poolId: "p", autoPoolSpecification: ["poolLifetimeOption": .string("job")])
        job.onAllTasksComplete = .terminateJob
        job.onTaskFailure = .performExitOptionsJobAction
        job.networkConfiguration = .object(["subnetId": .string("s")])
        job.metadata = [MetadataItem(name: "owner", value: "me \"quoted\"")]
        job.executionInfo = BatchJobExecutionInfo(
            startTime: "2026-11-30T18:25:16.725Z", endTime: "2026-11-30T18:25:18.000Z", poolId: "p",
            schedulingError: task.executionInfo?.failureInfo, terminateReason: "UserTerminate")
        job.stats = .object(["numTaskRetries": .number(0)])
        job.bookendWaitReason = BookendWaitReason(
            state: .blocked, code: "PreparationFailed", message: "m",
            failedPreparations: [BookendFailedPreparation(nodeId: "n1", exitCode: 1, failureInfo: nil, stderrTail: "boom")],
            dependencyId: "d")
        return job
    }()

    @Test func everyJobMemberIsSet() {
        #expect(Self.unsetMembers(Self.fullJob) == [])
    }

    /// One setter per optional member: each run clears a seeded random choice of them.
    static func jobClearers() -> [(inout BatchJob) -> Void] {
        typealias Clear = (inout BatchJob) -> Void
        var clearers: [Clear] = []
        clearers.append { $0.odataMetadata = nil }
        clearers.append { $0.displayName = nil }
        clearers.append { $0.usesTaskDependencies = nil }
        clearers.append { $0.url = nil }
        clearers.append { $0.eTag = nil }
        clearers.append { $0.lastModified = nil }
        clearers.append { $0.creationTime = nil }
        clearers.append { $0.state = nil }
        clearers.append { $0.stateTransitionTime = nil }
        clearers.append { $0.previousState = nil }
        clearers.append { $0.previousStateTransitionTime = nil }
        clearers.append { $0.priority = nil }
        clearers.append { $0.allowTaskPreemption = nil }
        clearers.append { $0.maxParallelTasks = nil }
        clearers.append { $0.constraints?.maxWallClockTime = nil }
        clearers.append { $0.constraints?.maxTaskRetryCount = nil }
        clearers.append { $0.constraints = nil }
        clearers.append { $0.jobManagerTask = nil }
        clearers.append { $0.jobPreparationTask?.id = nil }
        clearers.append { $0.jobPreparationTask?.containerSettings = nil }
        clearers.append { $0.jobPreparationTask?.resourceFiles = nil }
        clearers.append { $0.jobPreparationTask?.environmentSettings = nil }
        clearers.append { $0.jobPreparationTask?.constraints = nil }
        clearers.append { $0.jobPreparationTask?.waitForSuccess = nil }
        clearers.append { $0.jobPreparationTask?.userIdentity = nil }
        clearers.append { $0.jobPreparationTask?.rerunOnNodeRebootAfterSuccess = nil }
        clearers.append { $0.jobPreparationTask = nil }
        clearers.append { $0.jobReleaseTask?.id = nil }
        clearers.append { $0.jobReleaseTask?.containerSettings = nil }
        clearers.append { $0.jobReleaseTask?.resourceFiles = nil }
        clearers.append { $0.jobReleaseTask?.environmentSettings = nil }
        clearers.append { $0.jobReleaseTask?.maxWallClockTime = nil }
        clearers.append { $0.jobReleaseTask?.retentionTime = nil }
        clearers.append { $0.jobReleaseTask?.userIdentity = nil }
        clearers.append { $0.jobReleaseTask = nil }
        clearers.append { $0.commonEnvironmentSettings = nil }
        clearers.append { $0.poolInfo?.poolId = nil }
        clearers.append { $0.poolInfo?.autoPoolSpecification = nil }
        clearers.append { $0.poolInfo = nil }
        clearers.append { $0.onAllTasksComplete = nil }
        clearers.append { $0.onTaskFailure = nil }
        clearers.append { $0.networkConfiguration = nil }
        clearers.append { $0.metadata = nil }
        clearers.append { $0.executionInfo?.startTime = nil }
        clearers.append { $0.executionInfo?.endTime = nil }
        clearers.append { $0.executionInfo?.poolId = nil }
        clearers.append { $0.executionInfo?.schedulingError = nil }
        clearers.append { $0.executionInfo?.terminateReason = nil }
        clearers.append { $0.executionInfo = nil }
        clearers.append { $0.stats = nil }
        clearers.append { $0.bookendWaitReason?.code = nil }
        clearers.append { $0.bookendWaitReason?.message = nil }
        clearers.append { $0.bookendWaitReason?.failedPreparations = nil }
        clearers.append { $0.bookendWaitReason?.dependencyId = nil }
        clearers.append { $0.bookendWaitReason = nil }
        return clearers
    }

    @Test(arguments: 0..<40)
    func jobsWithMembersLeftOutAreWrittenAsTheEncoderWritesThem(seed: Int) throws {
        var random = SplitMix64(seed: UInt64(seed) &+ 1000)
        var job = Self.fullJob
        for clear in Self.jobClearers() where random.next() % 2 == 0 { clear(&job) }
        if random.next() % 3 == 0 { job.state = .unrecognized("SomeNewState") }
        if random.next() % 3 == 0 { job.metadata = [] }
        for select: Set<String>? in [nil, Set(["id", "state", "jobPreparationTask", "nothing", "odata.metadata"].filter { _ in random.next() % 2 == 0 })] {
            let (direct, encoder) = try Self.bothWays(job, select: select)
            #expect(direct == encoder, "seed \(seed), $select \(select?.sorted() ?? [])")
        }
    }

    /// The answer of `addtaskcollection`, with stored and refused items.
    @Test func addCollectionResultsAreWrittenAsTheEncoderWritesThem() throws {
        let results = BatchTaskAddCollectionResult(odataMetadata: "http://h/$metadata#taskaddresult", value: [
            BatchTaskAddResult(status: .success, taskId: "t1", eTag: "0x1", lastModified: "2026-11-30T18:25:16.726Z", location: "http://h/jobs/j/tasks/t1"),
            BatchTaskAddResult(status: .clientError, taskId: "t\"2", error: BatchError(code: "TaskExists",
                message: BatchErrorMessage(lang: "en-US", value: "The task exists"), values: [BatchErrorDetail(key: "k", value: "v")])),
            BatchTaskAddResult(status: .serverError, taskId: "t3"),
        ])
        #expect(Self.unsetMembers(results.value[0]) == ["error"])
        for select: Set<String>? in [nil, ["value"], ["odata.metadata"]] {
            let (direct, encoder) = try Self.bothWays(results, select: select)
            #expect(direct == encoder)
        }
    }

    /// The path a page takes: `PageBody` writes each task the same way.
    @Test func aPageOfTasksParsesBackToTheTasks() throws {
        var tasks: [BatchTask] = []
        for index in 0..<3 {
            var task = Self.full
            task.id = "t\(index)"
            tasks.append(task)
        }
        var direct: [UInt8] = []
        var encoder: [UInt8] = []
        for task in tasks {
            try JSONBytesEncoder.encode(task, into: &direct)
            try JSONBytesEncoder.encodeThroughEncoder(task, select: nil, into: &encoder)
        }
        #expect(direct == encoder)
        let one = try JSONDecoder().decode(BatchTask.self, from: Data(try JSONBytesEncoder.encode(tasks[1])))
        #expect(one == tasks[1])
    }
}

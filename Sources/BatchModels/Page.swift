/// One page of a list (`GET /pools`, `/jobs/{jobId}/tasks`, …): the items, and the absolute URL of the
/// next page while more remain.
public struct BatchPage<Item: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
    public var odataMetadata: String?
    public var value: [Item]
    public var odataNextLink: String?

    enum CodingKeys: String, CodingKey {
        case odataMetadata = "odata.metadata"
        case value
        case odataNextLink = "odata.nextLink"
    }

    public init(odataMetadata: String? = nil, value: [Item], odataNextLink: String? = nil) {
        self.odataMetadata = odataMetadata
        self.value = value
        self.odataNextLink = odataNextLink
    }
}

public typealias BatchPoolList = BatchPage<BatchPool>
public typealias BatchNodeList = BatchPage<BatchNode>
public typealias BatchJobList = BatchPage<BatchJob>
public typealias BatchTaskList = BatchPage<BatchTask>
public typealias BatchJobPreparationAndReleaseTaskStatusList = BatchPage<BatchJobPreparationAndReleaseTaskStatus>
public typealias BatchNodeFileList = BatchPage<BatchNodeFile>
public typealias BatchPoolNodeCountsList = BatchPage<BatchPoolNodeCounts>

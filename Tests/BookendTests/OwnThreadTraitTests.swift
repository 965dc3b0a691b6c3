import Foundation
import TestSupport
import Testing

/// `.ownThread` takes a suite's test bodies off Swift's cooperative pool: synchronous ones (which
/// block while they wait) and asynchronous ones alike run on a thread of their own.
@Suite(.ownThread) struct OwnThreadTraitTests {
    @Test func aSynchronousTestRunsOnItsOwnThread() {
        #expect(OwnThreadExecutor.isCurrent())
    }

    @Test func anAsynchronousTestRunsThereToo() async throws {
        #expect(OwnThreadExecutor.isCurrent())
        try await Task.sleep(for: .milliseconds(10))
        #expect(OwnThreadExecutor.isCurrent())
    }
}

/// Without the trait, a test runs on the pool: what the check above tells apart.
@Suite struct WithoutOwnThreadTests {
    @Test func aTestWithoutTheTraitRunsOnThePool() async {
        #expect(!OwnThreadExecutor.isCurrent())
    }
}

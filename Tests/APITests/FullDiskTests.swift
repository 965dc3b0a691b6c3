import Bookend
import Foundation
import HTTPTypes
import TestSupport
import Testing

/// A full disk under the data directory: every write is answered 503 `ServerBusy` saying so (not a
/// bare 500), what was stored before stays, and writes work again once there is space.
@Suite struct FullDiskTests {
    @Test func writesOnAFullDiskAreServerBusyAndLoseNothing() async throws {
        guard geteuid() == 0 else {
            print("FullDiskTests skipped: mounting a tmpfs needs root, and these tests are not running as root")
            return
        }
        let mountPoint = NSTemporaryDirectory() + "bookend-full-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try await run("/bin/mount", ["-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", mountPoint])
        guard mounted.status == 0 else {
            print("FullDiskTests skipped: mount -t tmpfs failed (\(mounted.stderr.trimmingCharacters(in: .whitespacesAndNewlines)))")
            return
        }
        try await withCleanup({
            _ = try? await run("/bin/umount", ["-l", mountPoint])
            try? FileManager.default.removeItem(atPath: mountPoint)
        }) {
            try await withRouter(in: mountPoint) { client in
                #expect(try await client.send(.post, "/jobs", body: #"{"id":"before","poolInfo":{"poolId":"p"}}"#).status == 201)
                // Fill what is left, then write until the database cannot grow (its log may have room
                // for a few commits first).
                let filler = mountPoint + "/filler"
                _ = try await run("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"])
                var refused: Reply?
                for index in 0..<2_000 {
                    let reply = try await client.send(.post, "/jobs", body: #"{"id":"j\#(index)","poolInfo":{"poolId":"p"}}"#)
                    if reply.status != 201 { refused = reply; break }
                }
                let reply = try #require(refused, "2,000 jobs were stored on a full 8 MiB file system")
                #expect(reply.status == 503)
                #expect(reply.json["code"] as? String == "ServerBusy")
                let message = (reply.json["message"] as? [String: Any])?["value"] as? String ?? ""
                #expect(message.contains("disk is full"), "\(message)")
                unlink(filler)
                #expect(try await client.send(.post, "/jobs", body: #"{"id":"after","poolInfo":{"poolId":"p"}}"#).status == 201)
                #expect(try await client.send(.get, "/jobs/before").status == 200)
            }
        }
    }
}

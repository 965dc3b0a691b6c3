import Foundation
import Testing

@Suite struct FileTests {
    /// A pool with one node and a completed task `ft` of job `fj` that ran `command`; by default one
    /// that left `wd/out dir/x.txt`, a link out of its directory, and a node file in `shared`.
    func prepare(
        _ server: LiveServer,
        command: String = #"/bin/sh -c 'mkdir -p \"out dir\" && printf 0123456789 > \"out dir/x.txt\" && ln -s / escape && echo shared > $AZ_BATCH_NODE_SHARED_DIR/s.txt && echo done'"#
    ) async throws -> String {
        #expect(try await server.send(.post, "/pools", body: #"{"id":"fp","vmSize":"small","targetDedicatedNodes":1}"#).status == 201)
        #expect(try await server.send(.post, "/jobs", body: #"{"id":"fj","poolInfo":{"poolId":"fp"}}"#).status == 201)
        #expect(try await server.send(.post, "/jobs/fj/tasks", body: #"{"id":"ft","commandLine":"\#(command)"}"#).status == 201)
        #expect(try await eventually {
            (try await server.send(.get, "/jobs/fj/tasks/ft").json["state"] as? String) == "completed"
        })
        let task = try await server.send(.get, "/jobs/fj/tasks/ft")
        #expect((task.json["executionInfo"] as? [String: Any])?["exitCode"] as? Int == 0, "\(task.text)")
        return (task.json["nodeInfo"] as? [String: Any])?["nodeId"] as? String ?? ""
    }

    /// A folder's listing taken a page at a time, by its `odata.nextLink`s, is the whole listing in
    /// the same order (case-blind, then exact), each name once; with a `startswith` filter too.
    @Test func fileListingsPageInOrderWithoutGapsOrRepeats() async throws {
        try await withServer { server in
            // 84 files whose names differ in case and length, in two folders.
            _ = try await prepare(server, command: #"/bin/sh -c 'mkdir A b && for n in $(seq 1 20); do touch f$n F$n A/x$n b/X$n; done; touch a B Bb bB'"#)
            func names(_ page: Reply) -> [String] {
                (page.json["value"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            }
            func follow(_ query: [(String, String)]) async throws -> [String] {
                var found: [String] = []
                var page = try await server.send(.get, "/jobs/fj/tasks/ft/files", query: query)
                while true {
                    #expect(page.status == 200, "\(page.text.prefix(300))")
                    found += names(page)
                    guard let next = page.json["odata.nextLink"] as? String, let url = URLComponents(string: next) else { break }
                    page = try await server.send(.get, url.path, query: (url.queryItems ?? []).filter { $0.name != "api-version" }.map { ($0.name, $0.value ?? "") })
                }
                return found
            }
            let whole = try await server.send(.get, "/jobs/fj/tasks/ft/files", query: [("recursive", "true")])
            #expect(whole.json["odata.nextLink"] == nil)
            let all = names(whole).filter { $0.hasPrefix("wd/") }
            #expect(all.count == 86, "\(all)")
            #expect(all == all.sorted { $0.lowercased() != $1.lowercased() ? $0.lowercased() < $1.lowercased() : $0 < $1 })
            for size in ["1", "7", "40"] {
                let paged = try await follow([("recursive", "true"), ("maxresults", size)])
                #expect(paged == names(whole), "maxresults=\(size)")
            }
            let filtered = try await follow([("recursive", "true"), ("maxresults", "3"), ("$filter", "startswith(name,'wd/A/')")])
            #expect(filtered == all.filter { $0.hasPrefix("wd/A/") } && filtered.count == 20, "\(filtered)")
        }
    }

    @Test func taskFiles() async throws {
        try await withServer { server in
            _ = try await prepare(server)
            let flat = try await server.send(.get, "/jobs/fj/tasks/ft/files")
            let flatNames = (flat.json["value"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(flatNames.contains("stdout.txt"))
            #expect(flatNames.contains("wd"))
            #expect(!flatNames.contains("wd/out dir/x.txt"))
            let deep = try await server.send(.get, "/jobs/fj/tasks/ft/files", query: [("recursive", "true")])
            let entries = deep.json["value"] as? [[String: Any]] ?? []
            let file = entries.first { $0["name"] as? String == "wd/out dir/x.txt" }
            #expect(file != nil, "\(deep.text)")
            #expect((file?["properties"] as? [String: Any])?["contentLength"] as? String == "10")
            #expect((file?["url"] as? String)?.hasSuffix("/jobs/fj/tasks/ft/files/wd%2Fout%20dir%2Fx.txt") == true)
            let filtered = try await server.send(.get, "/jobs/fj/tasks/ft/files", query: [("recursive", "true"), ("$filter", "startswith(name,'std')")])
            #expect((filtered.json["value"] as? [[String: Any]])?.count == 2)

            let stdout = try await server.send(.get, "/jobs/fj/tasks/ft/files/stdout.txt")
            #expect(stdout.status == 200)
            #expect(stdout.text == "done\n")
            let content = try await server.send(.get, "/jobs/fj/tasks/ft/files/wd%2Fout%20dir%2Fx.txt")
            #expect(content.text == "0123456789")
            #expect(content.header("Content-Type") == "application/octet-stream")
            let ranged = try await server.send(.get, "/jobs/fj/tasks/ft/files/wd%2Fout%20dir%2Fx.txt", headers: ["ocp-range": "bytes=2-4"])
            #expect(ranged.status == 200)
            #expect(ranged.text == "234")
            let outside = try await server.send(.get, "/jobs/fj/tasks/ft/files/wd%2Fout%20dir%2Fx.txt", headers: ["ocp-range": "bytes=20-30"])
            #expect(outside.status == 416)

            let head = try await server.send(.head, "/jobs/fj/tasks/ft/files/wd%2Fout%20dir%2Fx.txt")
            #expect(head.status == 200)
            #expect(head.header("Content-Length") == "10")
            #expect(head.header("ocp-batch-file-isdirectory") == "false")
            #expect(head.header("Last-Modified")?.hasSuffix("GMT") == true)
            #expect(head.header("ocp-creation-time") != nil)
            #expect(head.header("ocp-batch-file-mode")?.count == 4)
            #expect(head.body.isEmpty)

            #expect(try await server.send(.get, "/jobs/fj/tasks/ft/files/nothing.txt").code == "FileNotFound")
            #expect(try await server.send(.get, "/jobs/fj/tasks/ft/files/wd").code == "OperationInvalidForCurrentState")

            let delete = try await server.send(.delete, "/jobs/fj/tasks/ft/files/wd%2Fout%20dir%2Fx.txt")
            #expect(delete.status == 200)
            #expect(try await server.send(.get, "/jobs/fj/tasks/ft/files/wd%2Fout%20dir%2Fx.txt").code == "FileNotFound")
        }
    }

    @Test func pathsNeverEscape() async throws {
        try await withServer { server in
            let nodeID = try await prepare(server)
            // A path with a `..` segment (however encoded) is refused as a bad value; one without is
            // looked up beneath the root, where nothing of that name exists.
            let escaping: [(path: String, status: Int, code: String)] = [
                ("..%2F..%2F..%2F..%2Fbookend.db", 400, "InvalidPropertyValue"),
                ("wd%2F..%2F..%2F..%2F..%2F..%2Fbookend.db", 400, "InvalidPropertyValue"),
                ("%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", 400, "InvalidPropertyValue"),
                ("wd%2Fescape%2Fetc%2Fpasswd", 404, "FileNotFound"),
                ("wd/../../../../../bookend.db", 400, "InvalidPropertyValue"),
            ]
            for (path, status, code) in escaping {
                let reply = try await server.send(.get, "/jobs/fj/tasks/ft/files/\(path)")
                #expect(reply.status == status, "\(path): \(reply.status)")
                #expect(reply.code == code, "\(path)")
                #expect(!reply.text.contains("root:"))
                let head = try await server.send(.head, "/jobs/fj/tasks/ft/files/\(path)")
                #expect(head.status == status, "\(path)")
                let delete = try await server.send(.delete, "/jobs/fj/tasks/ft/files/\(path)")
                #expect(delete.status == status, "\(path)")
                #expect(delete.code == code, "\(path)")
                let node = try await server.send(.get, "/pools/fp/nodes/\(nodeID)/files/\(path)")
                #expect(node.status == status, "\(path)")
                #expect(node.code == code, "\(path)")
            }
            // The root itself, or a path that names it, is never a file to delete.
            for root in [".", "wd%2F..", "%2F", "wd%2F."] {
                let delete = try await server.send(.delete, "/jobs/fj/tasks/ft/files/\(root)", query: [("recursive", "true")])
                #expect(delete.status == 400, "\(root): \(delete.status)")
                #expect(delete.code == "InvalidPropertyValue", "\(root)")
                let node = try await server.send(.delete, "/pools/fp/nodes/\(nodeID)/files/\(root)", query: [("recursive", "true")])
                #expect(node.status == 400, "\(root): \(node.status)")
                #expect(node.code == "InvalidPropertyValue", "\(root)")
            }
            #expect(try await server.send(.get, "/jobs/fj/tasks/ft/files/stdout.txt").status == 200)
            #expect(FileManager.default.fileExists(atPath: server.dataDirectory + "/bookend.db"))
            // The link itself is listed only if it resolves inside; its target is never followed out.
            let deep = try await server.send(.get, "/jobs/fj/tasks/ft/files", query: [("recursive", "true")])
            let names = (deep.json["value"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(!names.contains { $0.hasPrefix("wd/escape") })
        }
    }

    @Test func nodeFiles() async throws {
        try await withServer { server in
            let nodeID = try await prepare(server)
            let list = try await server.send(.get, "/pools/fp/nodes/\(nodeID)/files", query: [("recursive", "true")])
            let names = (list.json["value"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
            #expect(names.contains("shared/s.txt"), "\(names)")
            #expect(names.contains("workitems/fj/job-1/ft/stdout.txt"), "\(names)")
            let shared = try await server.send(.get, "/pools/fp/nodes/\(nodeID)/files/shared%2Fs.txt")
            #expect(shared.text == "shared\n")
            let dir = try await server.send(.head, "/pools/fp/nodes/\(nodeID)/files/shared")
            #expect(dir.header("ocp-batch-file-isdirectory") == "true")
            #expect(try await server.send(.delete, "/pools/fp/nodes/\(nodeID)/files/workitems").code == "DirectoryNotEmpty")
            #expect(try await server.send(.delete, "/pools/fp/nodes/\(nodeID)/files/shared", query: [("recursive", "true")]).status == 200)
            #expect(try await server.send(.get, "/pools/fp/nodes/\(nodeID)/files/shared%2Fs.txt").code == "FileNotFound")
        }
    }
}

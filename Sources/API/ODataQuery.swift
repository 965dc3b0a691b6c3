import Bookend
import Foundation

/// `$filter`, `$select`, `maxresults` and `$skiptoken` of a list request, and the page it yields (§6.4, §8).
struct ListQuery {
    let filter: ODataFilter?
    let select: Set<String>?
    let maxResults: Int
    /// The last key of the previous page.
    let after: String?

    init(_ request: APIRequest, properties: [String: FilterKind]) throws {
        if let text = request.query.first("$filter"), !text.trimmingCharacters(in: .whitespaces).isEmpty {
            filter = try ODataFilter.parse(text, properties: properties)
        } else {
            filter = nil
        }
        select = try ListQuery.selection(request)
        if let text = request.query.first("maxresults") {
            // Not a number at all is a bad value (`InvalidQueryParameterValue`); a number outside
            // 1...1000 is out of range (§6.6).
            guard let value = Int(text) else { throw APIErrors.invalidQuery("maxresults", text, "not an integer") }
            guard (1...1000).contains(value) else {
                throw BookendError(.invalidRequest, "OutOfRangeQueryParameterValue",
                    "The value for query parameter maxresults must be between 1 and 1000",
                    details: [.init(key: "QueryParameterName", value: "maxresults"), .init(key: "QueryParameterValue", value: text)])
            }
            maxResults = value
        } else {
            maxResults = APILimits.defaultMaxResults
        }
        if let token = request.query.first("$skiptoken"), !token.isEmpty {
            guard let key = ListQuery.decodeToken(token) else { throw APIErrors.invalidQuery("$skiptoken", token, "not a token this server issued") }
            after = key
        } else {
            after = nil
        }
    }

    /// Whether `$expand` asks for `stats` (spec §8.2; `metadata` is accepted and changes nothing).
    /// Anything else it names is refused (400 `InvalidQueryParameterValue`) rather than ignored: a
    /// client that misspells `stats` would otherwise read answers without them and not know why.
    static func expandsStats(_ request: APIRequest) throws -> Bool {
        guard let text = request.query.first("$expand"), !text.trimmingCharacters(in: .whitespaces).isEmpty else { return false }
        var stats = false
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            switch item.trimmingCharacters(in: .whitespaces).lowercased() {
            case "stats": stats = true
            case "metadata": break
            default: throw APIErrors.invalidQuery("$expand", text, "a comma-separated list of stats and metadata")
            }
        }
        return stats
    }

    static func selection(_ request: APIRequest) throws -> Set<String>? {
        guard let text = request.query.first("$select"), !text.isEmpty else { return nil }
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard names.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "/" } }) else {
            throw APIErrors.invalidQuery("$select", text, "a comma-separated list of property names")
        }
        return Set(names.map { String($0.split(separator: "/").first ?? "") })
    }

    static func encodeToken(_ key: String) -> String {
        Data(key.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// The key a `$skiptoken` from `encodeToken` carries, or nil for anything `encodeToken` cannot
    /// have made: characters outside base64url, a length no encoding has (`Data(base64Encoded:)`
    /// refuses it), bytes that are not UTF-8 (decoding them leniently would page on from a key nobody
    /// sent), or a NUL, which no id or file name holds.
    static func decodeToken(_ token: String) -> String? {
        let alphabet = token.utf8.allSatisfy {
            (65...90).contains($0) || (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
        }
        guard alphabet else { return nil }
        var text = token.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.utf8.count % 4 != 0 { text += "=" }
        guard let bytes = Data(base64Encoded: text), !bytes.isEmpty,
              !bytes.contains(0), let key = String(bytes: bytes, encoding: .utf8) else { return nil }
        return key
    }

    /// One page of `items` (wire models, keyed for stable ordering), with `odata.nextLink` when more remain.
    func page<Item: Encodable>(_ items: [(key: String, item: Item)], request: APIRequest, metadata: String) throws -> Reply {
        try page(items.map { (key: $0.key, entity: $0.item) }, request: request, metadata: metadata) { $0 }
    }

    /// One page of a list held whole in memory, each entity made its wire model only when the page
    /// looks at it: a task folder of 100,000 files rendered every entry to answer 1,000 of them.
    func page<Entity, Item: Encodable>(
        _ entities: [(key: String, entity: Entity)], request: APIRequest, metadata: String, render: (Entity) throws -> Item
    ) throws -> Reply {
        // In `precedes` order, each key lowered once: lowering both keys at every comparison of the
        // sort was most of a 100,000-file listing's time.
        let sorted = entities.map { (lowered: $0.key.lowercased(), key: $0.key, entity: $0.entity) }
            .sorted { $0.lowered != $1.lowered ? $0.lowered < $1.lowered : $0.key < $1.key }
        var remaining = sorted[...]
        if let after {
            let loweredAfter = after.lowercased()
            remaining = sorted.drop { loweredAfter != $0.lowered ? !(loweredAfter < $0.lowered) : !(after < $0.key) }
        }
        var body = PageBody(request: request, metadata: metadata, select: select)
        var lastKey: String?
        var more = false
        for entry in remaining {
            // Unfiltered, the page is full once it holds `maxResults`: one more entry means a next page.
            if filter == nil, body.count == maxResults {
                more = true
                break
            }
            let item = try render(entry.entity)
            guard try matches(item) else { continue }
            if body.count == maxResults {
                more = true
                break
            }
            try body.append(item)
            lastKey = entry.key
        }
        return body.reply(nextLink: more ? lastKey.map { nextLink(request, token: ListQuery.encodeToken($0)) } : nil)
    }

    /// An empty page (a list Bookend has nothing for), after the query was checked like any other.
    func emptyPage(request: APIRequest, metadata: String) -> Reply {
        PageBody(request: request, metadata: metadata, select: select).reply(nextLink: nil)
    }

    /// One page fetched in key order from `fetch(after, limit)` (which returns entities after a key),
    /// for lists too long to load whole; `render` makes a run of entities their wire models.
    /// Filtered items are skipped until the page is full.
    func page<Entity: Sendable, Item: Encodable>(
        request: APIRequest, metadata: String,
        fetch: (_ after: String?, _ limit: Int) async throws -> [(key: String, entity: Entity)],
        render: @escaping @Sendable (ArraySlice<Entity>) throws -> [Item]
    ) async throws -> Reply {
        let batchSize = min(1000, maxResults + 1)
        var cursor = after
        var body = PageBody(request: request, metadata: metadata, select: select)
        var lastKey: String?
        var more = false
        var scanned = 0
        fetching: while true {
            // Unfiltered, every row is an item: a full page needs only one more row to know that
            // there is a next page (a page of 1,000 read a second 1,000 rows to learn it).
            let limit = filter == nil ? min(batchSize, maxResults - body.count + 1) : batchSize
            let batch = try await fetch(cursor, limit)
            if filter == nil {
                // Every entity is an item: the page takes as many as it has room for, and one more
                // means there is a next page.
                let taken = min(batch.count, maxResults - body.count)
                if taken > 0 {
                    try await body.append(rendering: batch[..<taken].map(\.entity), render)
                    lastKey = batch[taken - 1].key
                }
                if batch.count > taken {
                    more = true
                    break
                }
            } else {
                let items = try render(batch.map(\.entity)[...])
                body.expect(min(batch.count, maxResults - body.count))
                for (entry, item) in zip(batch, items) {
                    guard try matches(item) else { continue }
                    if body.count == maxResults {
                        more = true
                        break fetching
                    }
                    try body.append(item)
                    lastKey = entry.key
                }
            }
            guard batch.count == limit, let last = batch.last else { break }
            cursor = last.key
            scanned += batch.count
            // A filter few entities match would otherwise read the whole list in one request (a job of
            // 200,000 tasks took seconds): past the budget the page ends short, even empty, with a
            // nextLink after the last entity read, as Azure's own lists do. Clients follow nextLinks
            // until there is none, so they see every match, a bounded piece of work per request.
            if filter != nil, scanned >= ListQuery.filteredScanBudget {
                more = true
                lastKey = last.key
                break
            }
        }
        return body.reply(nextLink: more ? lastKey.map { nextLink(request, token: ListQuery.encodeToken($0)) } : nil)
    }

    /// Entities a filtered page reads at most before it ends with a nextLink (`page(request:metadata:fetch:render:)`).
    static let filteredScanBudget = 10_000

    /// `$filter` works on the item as a JSON object; only a filtered list pays for building one.
    private func matches(_ item: some Encodable) throws -> Bool {
        guard let filter else { return true }
        return filter.matches(try Wire.object(item))
    }

    /// Case-insensitive order (ids are unique that way), ties broken by exact text (file names).
    static func precedes(_ a: String, _ b: String) -> Bool {
        let (x, y) = (a.lowercased(), b.lowercased())
        return x != y ? x < y : a < b
    }

    private func nextLink(_ request: APIRequest, token: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text }
        var parts = ["api-version=" + encode(request.query.first("api-version") ?? "")]
        for name in ["$filter", "$select", "$expand", "recursive"] {
            if let value = request.query.first(name) { parts.append("\(name)=\(encode(value))") }
        }
        parts.append("maxresults=\(maxResults)")
        parts.append("$skiptoken=\(token)")
        return request.baseURL + request.rawPath + "?" + parts.joined(separator: "&")
    }
}

/// A list answer written as its items are: `{"odata.metadata":…,"value":[…],"odata.nextLink":…}`,
/// each item encoded straight to bytes with `$select` applied.
struct PageBody {
    private var bytes: [UInt8] = []
    private let select: Set<String>?
    private(set) var count = 0
    /// Items a fetched batch is about to add, for `append` to make room for at once.
    private var expected = 0

    init(request: APIRequest, metadata: String, select: Set<String>?) {
        self.select = select
        bytes.reserveCapacity(16 * 1024)
        bytes += #"{"odata.metadata":"#.utf8
        JSONBytesEncoder.writeString(Wire.metadataURL(request.baseURL, metadata), into: &bytes)
        bytes += #","value":["#.utf8
    }

    mutating func append(_ item: some Encodable) throws {
        if count > 0 { bytes.append(UInt8(ascii: ",")) }
        let start = bytes.count
        try JSONBytesEncoder.encode(item, select: select, into: &bytes)
        count += 1
        expected -= 1
        if expected > 0, bytes.capacity - bytes.count < (bytes.count - start) * expected {
            // Room for the rest of the batch at a little over this item's size: growing a page of
            // 1,000 tasks (~600 KB) by doubling copied it and touched fresh memory at every step.
            bytes.reserveCapacity(bytes.count + (bytes.count - start + 1) * expected * 9 / 8)
            expected = 0
        }
    }

    /// Appends `entities` as items, made and written by `render` in runs on up to `lanes` threads at
    /// once: a page of 1,000 tasks spent most of its time making and writing its items, one after
    /// another on one thread, while the machine's other cores waited with it.
    mutating func append<Entity: Sendable, Item: Encodable>(
        rendering entities: [Entity], _ render: @escaping @Sendable (ArraySlice<Entity>) throws -> [Item]
    ) async throws {
        let runs = entities.count >= PageBody.entitiesPerRun * 2 ? min(PageBody.lanes, entities.count / PageBody.entitiesPerRun) : 1
        let select = self.select
        let write: @Sendable (ArraySlice<Entity>) throws -> [UInt8] = { run in
            var bytes: [UInt8] = []
            var first = true
            for item in try render(run) {
                if !first { bytes.append(UInt8(ascii: ",")) }
                first = false
                try JSONBytesEncoder.encode(item, select: select, into: &bytes)
            }
            return bytes
        }
        // Each run's bytes and how many items they hold, in the entities' order.
        var written: [(bytes: [UInt8], items: Int)]
        if runs == 1 {
            written = [(try write(entities[...]), entities.count)]
        } else {
            let size = (entities.count + runs - 1) / runs
            let slices = (0..<runs).map { entities[($0 * size)..<min(entities.count, ($0 + 1) * size)] }
            written = try await withThrowingTaskGroup(of: (Int, [UInt8]).self) { group in
                for (run, slice) in slices.enumerated() { group.addTask { (run, try write(slice)) } }
                var parts = slices.map { (bytes: [UInt8](), items: $0.count) }
                for try await (run, bytes) in group { parts[run].bytes = bytes }
                return parts
            }
        }
        bytes.reserveCapacity(bytes.count + written.reduce(runs) { $0 + $1.bytes.count })
        for part in written where part.items > 0 {
            if count > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += part.bytes
            count += part.items
        }
        expected = 0
    }

    /// Runs smaller than this are written where the page is, not handed to another thread.
    static let entitiesPerRun = 200
    static let lanes = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4))

    /// Says that up to `items` more are about to be appended (a batch just fetched).
    mutating func expect(_ items: Int) { expected = items }

    /// The page's answer. Consuming: the bytes are finished in place, where a copy of them first
    /// (a megabyte for 1,000 tasks, in fresh pages) was a cost of its own.
    consuming func reply(nextLink: String?) -> Reply {
        bytes.append(UInt8(ascii: "]"))
        if let nextLink {
            bytes += #","odata.nextLink":"#.utf8
            JSONBytesEncoder.writeString(nextLink, into: &bytes)
        }
        bytes.append(UInt8(ascii: "}"))
        return Reply(status: 200, body: Data(bytes), contentType: Wire.jsonContentType)
    }
}

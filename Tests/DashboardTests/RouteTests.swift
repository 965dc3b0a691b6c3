import API
import Bookend
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import Dashboard

/// The dashboard's routes through the daemon's own router (`APIServer.buildApplication`, as
/// `bookend serve` runs it) over a real engine and data directory, without a socket.
@Suite struct RouteTests {
    static let account = "uiacct"

    struct Answer {
        var status: Int
        var headers: HTTPFields
        var body: String

        var cookies: [String] { headers[values: .setCookie] }
        func cookie(_ name: String) -> String? {
            cookies.first { $0.hasPrefix("\(name)=") }.map { String($0.dropFirst(name.count + 1).prefix { $0 != ";" }) }
        }
        /// The value of a hidden field of the page's form.
        func field(_ name: String) -> String? {
            guard let range = body.range(of: #"name="\#(name)" value=""#) else { return nil }
            return String(body[range.upperBound...].prefix { $0 != "\"" })
        }
    }

    struct Browser {
        let client: any TestClientProtocol
        var cookies: [String: String] = [:]

        mutating func send(_ method: HTTPRequest.Method, _ uri: String, form: [String: String]? = nil) async throws -> Answer {
            var headers = HTTPFields()
            if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
            var body: ByteBuffer?
            if let form {
                headers[.contentType] = "application/x-www-form-urlencoded"
                body = ByteBuffer(string: form.map { "\($0.key)=\(Web.segment($0.value))" }.joined(separator: "&"))
            }
            let response = try await client.execute(uri: uri, method: method, headers: headers, body: body)
            let answer = Answer(status: Int(response.status.code), headers: response.headers, body: String(buffer: response.body))
            for cookie in answer.cookies {
                let pair = cookie.prefix { $0 != ";" }.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard pair.count == 2 else { continue }
                if cookie.contains("Max-Age=0") { cookies[String(pair[0])] = nil } else { cookies[String(pair[0])] = String(pair[1]) }
            }
            return answer
        }

        /// Signs in through the form, as a person would.
        mutating func signIn(key: Data) async throws {
            let form = try await send(.get, "/ui/sign-in")
            let token = try #require(form.field("form"))
            let answer = try await send(.post, "/ui/sign-in", form: ["form": token, "account": RouteTests.account, "key": key.base64EncodedString(), "next": "/ui"])
            #expect(answer.status == 303)
        }
    }

    static func withDashboard(_ body: @Sendable (Engine, Data, any TestClientProtocol) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "bookend-dashboard-\(UUID().uuidString.prefix(8))"
        let engine = try await Engine.open(dataDirectory: directory)
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        var logger = Logger(label: "dashboard-test")
        logger.logLevel = .critical
        let app = APIServer.buildApplication(engine: engine, configuration: .init(accountName: account, key: key), logger: logger)
        do {
            try await app.test(.router) { client in try await body(engine, key, client) }
        } catch {
            await engine.shutdown()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        await engine.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func expectSecurityHeaders(_ answer: Answer) {
        let policy = answer.headers[.contentSecurityPolicy] ?? ""
        #expect(policy.contains("script-src 'self'"))
        #expect(policy.contains("frame-ancestors 'none'"))
        #expect(!policy.contains("unsafe-inline"))
        #expect(answer.headers[.xContentTypeOptions] == "nosniff")
    }

    /// The icon browsers ask for on every page: an empty answer without a key, not the API's 403.
    @Test func theFaviconIsAnsweredWithoutAKey() async throws {
        try await Self.withDashboard { _, _, client in
            var browser = Browser(client: client)
            let answer = try await browser.send(.get, "/favicon.ico")
            #expect(answer.status == 204)
            #expect(answer.body.isEmpty)
        }
    }

    @Test(arguments: [
        "/ui", "/ui/pools/p", "/ui/jobs/j", "/ui/jobs/j/why", "/ui/jobs/j/tasks/t", "/ui/jobs/j/tasks/t/why",
        "/ui/jobs/j/tasks/t/files/stdout.txt", "/ui/pools/p/nodes/n/files/shared/x", "/ui/jobs/j/confirm/terminate",
    ])
    func everyPageSendsABrowserWithoutASessionToSignIn(path: String) async throws {
        try await Self.withDashboard { _, _, client in
            var browser = Browser(client: client)
            let answer = try await browser.send(.get, path)
            #expect(answer.status == 303)
            #expect(answer.headers[.location] == "/ui/sign-in?next=\(Web.segment(path))")
            Self.expectSecurityHeaders(answer)
            // A made-up session is no session.
            browser.cookies[Dashboard.sessionCookie] = "made-up"
            #expect(try await browser.send(.get, path).status == 303)
        }
    }

    @Test(arguments: [
        "/ui/sign-out", "/ui/jobs/j/actions/terminate", "/ui/jobs/j/actions/delete", "/ui/jobs/j/tasks/t/actions/reactivate",
    ])
    func everyFormIsRefusedWithoutASessionOrWithoutItsToken(path: String) async throws {
        try await Self.withDashboard { _, key, client in
            var browser = Browser(client: client)
            #expect(try await browser.send(.post, path, form: ["csrf": "guess"]).status == 403)
            try await browser.signIn(key: key)
            let page = try await browser.send(.get, "/ui")
            let token = try #require(page.field("csrf"))
            #expect(try await browser.send(.post, path, form: [:]).status == 403)
            #expect(try await browser.send(.post, path, form: ["csrf": "guess"]).status == 403)
            #expect(try await browser.send(.post, path, form: ["csrf": String(token.dropLast())]).status == 403)
            // With the token the form goes through (to a job that does not exist, or to signing out).
            let accepted = try await browser.send(.post, path, form: ["csrf": token])
            #expect(accepted.status == (path == "/ui/sign-out" ? 303 : 404))
        }
    }

    @Test func signingInWithTheFormSetsAStrictHttpOnlySessionCookie() async throws {
        try await Self.withDashboard { _, key, client in
            var browser = Browser(client: client)
            let form = try await browser.send(.get, "/ui/sign-in?next=%2Fui%2Fjobs%2Fx")
            Self.expectSecurityHeaders(form)
            let token = try #require(form.field("form"))
            #expect(form.field("next") == "/ui/jobs/x")
            // Without the sign-in form's own token (a page of another site posting it): refused.
            var stranger = Browser(client: client)
            let forged = try await stranger.send(.post, "/ui/sign-in", form: ["form": token, "account": Self.account, "key": key.base64EncodedString()])
            #expect(forged.status == 403)
            #expect(forged.cookie(Dashboard.sessionCookie) == nil)
            let wrong = try await browser.send(.post, "/ui/sign-in", form: ["form": token, "account": Self.account, "key": Data(count: 32).base64EncodedString()])
            #expect(wrong.status == 403)
            #expect(wrong.body.contains("not right"))
            let fresh = try #require(wrong.field("form"))
            let answer = try await browser.send(.post, "/ui/sign-in", form: ["form": fresh, "account": Self.account, "key": key.base64EncodedString(), "next": "/ui/jobs/x"])
            #expect(answer.status == 303)
            #expect(answer.headers[.location] == "/ui/jobs/x")
            let cookie = try #require(answer.cookies.first { $0.hasPrefix(Dashboard.sessionCookie + "=") })
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Strict"))
            #expect(cookie.contains("Path=/ui"))
            #expect(!cookie.contains("Secure"))  // plain HTTP on loopback; TLS adds it (below)
            let overview = try await browser.send(.get, "/ui")
            #expect(overview.status == 200)
            #expect(overview.body.contains("<h1>Overview</h1>"))
            #expect(overview.headers[.cacheControl] == "no-store")
            Self.expectSecurityHeaders(overview)
            // Signing out ends the session on the server, not only in this browser.
            let session = try #require(browser.cookies[Dashboard.sessionCookie])
            _ = try await browser.send(.post, "/ui/sign-out", form: ["csrf": try #require(overview.field("csrf"))])
            var replay = Browser(client: client)
            replay.cookies[Dashboard.sessionCookie] = session
            #expect(try await replay.send(.get, "/ui").status == 303)
        }
    }

    @Test func aOneTimeLinkSignsInOnce() async throws {
        try await Self.withDashboard { _, key, client in
            let query = SignInLink.query(credentials: DashboardCredentials(accountName: Self.account, key: key))
            var browser = Browser(client: client)
            let first = try await browser.send(.get, "\(SignInLink.path)?\(query)")
            #expect(first.status == 303)
            #expect(first.cookie(Dashboard.sessionCookie) != nil)
            #expect(try await browser.send(.get, "/ui").status == 200)
            var other = Browser(client: client)
            let again = try await other.send(.get, "\(SignInLink.path)?\(query)")
            #expect(again.status == 403)
            #expect(again.cookie(Dashboard.sessionCookie) == nil)
            #expect(again.body.contains("used already"))
            let otherKey = SignInLink.query(credentials: DashboardCredentials(accountName: Self.account, key: Data(count: 32)))
            #expect(try await other.send(.get, "\(SignInLink.path)?\(otherKey)").status == 403)
        }
    }

    @Test func theSessionCookieIsSecureUnderTLS() async throws {
        let directory = NSTemporaryDirectory() + "bookend-dashboard-\(UUID().uuidString.prefix(8))"
        let engine = try await Engine.open(dataDirectory: directory)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let credentials = DashboardCredentials(accountName: Self.account, key: Data(count: 32))
        let dashboard = try Dashboard(engine: engine, configuration: .init(credentials: credentials, secure: true), logger: Logger(label: "t"))
        let router = Router()
        dashboard.addRoutes(to: router)
        let app = Application(router: router)
        try await app.test(.router) { client in
            var browser = Browser(client: client)
            let answer = try await browser.send(.get, "\(SignInLink.path)?\(SignInLink.query(credentials: credentials))")
            #expect(answer.cookies.allSatisfy { $0.contains("; Secure") })
            #expect(answer.cookie(Dashboard.sessionCookie) != nil)
        }
        await engine.shutdown()
    }

    @Test func anUnknownPageIsTheDashboardsOwnNotFound() async throws {
        try await Self.withDashboard { _, key, client in
            var browser = Browser(client: client)
            #expect(try await browser.send(.get, "/ui/no/such/page").status == 303)
            try await browser.signIn(key: key)
            for path in ["/ui/no/such/page", "/ui/jobs/j/unknown", "/ui/static/other.css"] {
                let answer = try await browser.send(.get, path)
                #expect(answer.status == 404, "\(path)")
                #expect(answer.body.contains("There is no such page."), "\(path)")
            }
            // The specific routes still win over the catch-all.
            #expect(try await browser.send(.get, "/ui/static/dashboard.css").body.contains("prefers-color-scheme"))
            #expect(try await browser.send(.get, "/ui/jobs/nope").body.contains("JobNotFound"))
            #expect(try await browser.send(.get, "/ui/jobs/nope/tasks/t/files/a/b/stdout.txt").status == 404)
            // The API beside it is untouched: still Shared Key.
            #expect(try await browser.send(.get, "/jobs").status == 403)
        }
    }

    @Test func theTaskListIsPagedAndFilteredByState() async throws {
        try await Self.withDashboard { engine, key, client in
            _ = try await engine.createPool(PoolSpec(id: "pool", vmSize: "small", targetDedicatedNodes: 0))
            _ = try await engine.createJob(JobSpec(id: "many", poolID: "pool"))
            _ = try await engine.addTasks(jobID: "many", (1...(Pages.pageSize + 5)).map { TaskSpec(id: String(format: "t%03d", $0), commandLine: "/bin/true") })
            var browser = Browser(client: client)
            try await browser.signIn(key: key)
            let first = try await browser.send(.get, "/ui/jobs/many")
            #expect(first.body.components(separatedBy: "<tr data-task=").count - 1 == Pages.pageSize)
            #expect(first.body.contains(#"<tr data-task="t050">"#))
            #expect(!first.body.contains(#"<tr data-task="t051">"#))
            #expect(first.body.contains(#"href="/ui/jobs/many?after=t050" id="next-page""#))
            let second = try await browser.send(.get, "/ui/jobs/many?after=t050")
            #expect(second.body.components(separatedBy: "<tr data-task=").count - 1 == 5)
            #expect(!second.body.contains("next-page"))
            let active = try await browser.send(.get, "/ui/jobs/many?state=active")
            #expect(active.body.contains(#"href="/ui/jobs/many?state=active&amp;after=t050""#))
            #expect(active.body.contains(#"<option value="active" selected>"#))
            let running = try await browser.send(.get, "/ui/jobs/many?state=running")
            #expect(running.body.contains("No tasks in this state"))
        }
    }

    @Test func theJobPageShowsAJobsTasksWithTheirTextEscaped() async throws {
        try await Self.withDashboard { engine, key, client in
            _ = try await engine.createPool(PoolSpec(id: "pool", vmSize: "small", targetDedicatedNodes: 0))
            var spec = JobSpec(id: "job_1", poolID: "pool")
            spec.displayName = "<i>shown</i>"
            _ = try await engine.createJob(spec)
            _ = try await engine.addTask(jobID: "job_1", TaskSpec(
                id: "t1", commandLine: "echo '<script>x()</script>'", environmentSettings: [EnvironmentSetting(name: "V", value: "<img src=x>")]))
            var browser = Browser(client: client)
            try await browser.signIn(key: key)
            let page = try await browser.send(.get, "/ui/jobs/job_1")
            #expect(page.status == 200)
            #expect(page.body.contains("job_1"))
            #expect(page.body.contains("&lt;i&gt;shown&lt;/i&gt;"))
            #expect(page.body.contains("echo &#39;&lt;script&gt;x()&lt;/script&gt;&#39;"))
            #expect(!page.body.contains("<script>x()"))
            #expect(!page.body.contains("<i>shown"))
            #expect(page.body.contains(#"data-live-url="/ui/jobs/job_1/live""#))
            let live = try await browser.send(.get, "/ui/jobs/job_1/live")
            #expect(live.status == 200)
            #expect(live.headers[.contentType] == "application/json")
            let parts = try JSONDecoder().decode([String: JSONValue].self, from: Data(live.body.utf8))
            #expect(parts["active"] == .bool(true))
            let filtered = try await browser.send(.get, "/ui/jobs/job_1?state=completed")
            #expect(filtered.body.contains("No tasks in this state"))
            let task = try await browser.send(.get, "/ui/jobs/job_1/tasks/t1")
            #expect(task.status == 200)
            #expect(task.body.contains("&lt;script&gt;x()&lt;/script&gt;"))
            #expect(task.body.contains("&lt;img src=x&gt;"))
            #expect(!task.body.contains("<img"))
            let missing = try await browser.send(.get, "/ui/jobs/nope")
            #expect(missing.status == 404)
            #expect(missing.body.contains("JobNotFound"))
            // A file outside the task's folder is never served.
            let escape = try await browser.send(.get, "/ui/jobs/job_1/tasks/t1/files/..%2F..%2Faccount.key")
            #expect(escape.status != 200)
            // Actions: terminate the job from its confirm page's form.
            let confirm = try await browser.send(.get, "/ui/jobs/job_1/confirm/terminate")
            #expect(confirm.status == 200)
            let token = try #require(confirm.field("csrf"))
            let done = try await browser.send(.post, "/ui/jobs/job_1/actions/terminate", form: ["csrf": token])
            #expect(done.status == 303)
            #expect(done.headers[.location] == "/ui/jobs/job_1")
            let state = try await engine.lookup { try $0.job(id: "job_1").state }
            #expect(state == .terminating || state == .completed)
        }
    }
}

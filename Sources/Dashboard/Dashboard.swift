import Bookend
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Mustache
import NIOCore

/// The web dashboard under `/ui`: server-rendered pages of pools, jobs (with each node's preparation,
/// tasks and release on a timeline) and tasks, and the actions people expect there. Mounted by the
/// API server on its own port, outside Shared Key: a browser signs in with the account key (or a
/// one-time link from `bookend ui-link`) and then carries a session cookie.
///
/// Generic over the router's context so that the API module mounts it on its own router without
/// this module knowing the API's types.
public struct Dashboard: Sendable {
    public struct Configuration: Sendable {
        public var credentials: DashboardCredentials
        /// Served over TLS: the session cookie is then `Secure`.
        public var secure: Bool
        public var sessionIdleTimeout: TimeInterval

        public init(credentials: DashboardCredentials, secure: Bool, sessionIdleTimeout: TimeInterval = 12 * 3600) {
            self.credentials = credentials
            self.secure = secure
            self.sessionIdleTimeout = sessionIdleTimeout
        }
    }

    static let sessionCookie = "bookend_session"
    static let signInCookie = "bookend_signin"

    let configuration: Configuration
    let sessions: SessionStore
    let usedNonces: UsedNonces
    let pages: Pages
    let library: MustacheLibrary
    let logger: Logger

    public init(engine: Engine, configuration: Configuration, logger: Logger) throws {
        self.configuration = configuration
        sessions = SessionStore(idleTimeout: configuration.sessionIdleTimeout)
        usedNonces = UsedNonces(file: (engine.dataDirectory as NSString).appendingPathComponent("ui-link-nonces"))
        pages = Pages(engine: engine)
        library = try Templates.library()
        self.logger = logger
    }

    var engine: Engine { pages.engine }

    /// Adds every `/ui` route to `router`. Call it before the router's authentication middleware:
    /// routes take the middleware added before them, and the dashboard checks its own sessions.
    public func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/ui/static/dashboard.css") { _, _ in
            Web.text(Data(Assets.stylesheet.utf8), contentType: "text/css; charset=utf-8", cache: "max-age=300")
        }
        router.get("/ui/static/dashboard.js") { _, _ in
            Web.text(Data(Assets.script.utf8), contentType: "text/javascript; charset=utf-8", cache: "max-age=300")
        }
        // Browsers ask for it on every page: answered here, without a key, rather than with the
        // API's 403 (which filled the console of every dashboard page).
        router.get("/favicon.ico") { _, _ in Web.text(Data(), contentType: "image/x-icon", status: .noContent, cache: "max-age=86400") }
        router.get("/ui/sign-in") { request, _ in signInPage(next: Web.query(request)["next"], message: nil) }
        router.post("/ui/sign-in") { request, _ in try await signIn(request) }
        router.get(RouterPath(stringLiteral: SignInLink.path)) { request, _ in signInWithLink(request) }
        router.post("/ui/sign-out") { request, _ in
            try await form(request) { session, _ in
                sessions.end(session.id)
                return Web.redirect("/ui/sign-in", cookies: [expiredCookie(Dashboard.sessionCookie)])
            }
        }
        router.get("/ui") { request, _ in try await page(request) { chrome in render(try await pages.overview(chrome), "overview") } }
        router.get("/ui/pools/:poolid") { request, context in
            try await page(request) { chrome in render(try await pages.pool(chrome, poolID: Dashboard.parameter(context, "poolid")), "pool") }
        }
        router.get("/ui/pools/:poolid/nodes/:nodeid/files/**") { request, context in
            try await page(request) { _ in
                try await file(.node(poolID: Dashboard.parameter(context, "poolid"), nodeID: Dashboard.parameter(context, "nodeid")),
                    path: Dashboard.catchAll(context))
            }
        }
        router.get("/ui/jobs/:jobid") { request, context in
            try await page(request) { chrome in
                render(try await pages.job(chrome, jobID: Dashboard.parameter(context, "jobid"), query: .init(Web.query(request))), "job")
            }
        }
        router.get("/ui/jobs/:jobid/live") { request, context in try await live(request, jobID: Dashboard.parameter(context, "jobid")) }
        router.get("/ui/jobs/:jobid/why") { request, context in
            try await page(request) { chrome in render(try await pages.why(chrome, jobID: Dashboard.parameter(context, "jobid"), taskID: nil), "why") }
        }
        router.get("/ui/jobs/:jobid/confirm/:action") { request, context in
            try await page(request) { chrome in try await confirmJob(chrome, jobID: Dashboard.parameter(context, "jobid"), action: Dashboard.parameter(context, "action")) }
        }
        router.post("/ui/jobs/:jobid/actions/:action") { request, context in
            try await form(request) { _, fields in
                try await actOnJob(jobID: Dashboard.parameter(context, "jobid"), action: Dashboard.parameter(context, "action"), fields: fields)
            }
        }
        router.get("/ui/jobs/:jobid/tasks/:taskid") { request, context in
            try await page(request) { chrome in
                render(try await pages.task(chrome, jobID: Dashboard.parameter(context, "jobid"), taskID: Dashboard.parameter(context, "taskid")), "task")
            }
        }
        router.get("/ui/jobs/:jobid/tasks/:taskid/why") { request, context in
            try await page(request) { chrome in
                render(try await pages.why(chrome, jobID: Dashboard.parameter(context, "jobid"), taskID: Dashboard.parameter(context, "taskid")), "why")
            }
        }
        router.get("/ui/jobs/:jobid/tasks/:taskid/files/**") { request, context in
            try await page(request) { _ in
                try await file(.task(jobID: Dashboard.parameter(context, "jobid"), taskID: Dashboard.parameter(context, "taskid")), path: Dashboard.catchAll(context))
            }
        }
        router.get("/ui/jobs/:jobid/tasks/:taskid/confirm/:action") { request, context in
            try await page(request) { chrome in
                try await confirmTask(chrome, jobID: Dashboard.parameter(context, "jobid"), taskID: Dashboard.parameter(context, "taskid"),
                    action: Dashboard.parameter(context, "action"))
            }
        }
        router.post("/ui/jobs/:jobid/tasks/:taskid/actions/:action") { request, context in
            try await form(request) { _, _ in
                try await actOnTask(jobID: Dashboard.parameter(context, "jobid"), taskID: Dashboard.parameter(context, "taskid"),
                    action: Dashboard.parameter(context, "action"))
            }
        }
        // Any other page under /ui: the dashboard's own "not found" (or sign-in), not a Batch error body.
        // The router tries every specific route before a catch-all.
        router.get("/ui/**") { request, _ in
            try await page(request) { chrome in
                render(ProblemPage(chrome: chrome, heading: "Not found", message: "There is no such page."), "problem", status: .notFound)
            }
        }
    }

    /// A route parameter, percent-decoded: ids may hold characters a URL encodes.
    static func parameter<Context: RequestContext>(_ context: Context, _ name: String) -> String {
        let raw = context.parameters.get(name) ?? ""
        return raw.removingPercentEncoding ?? raw
    }

    static func catchAll<Context: RequestContext>(_ context: Context) -> String {
        context.parameters.getCatchAll().map { $0.removingPercentEncoding ?? String($0) }.joined(separator: "/")
    }

    // MARK: Sessions

    func cookie(_ name: String, _ value: String) -> String {
        "\(name)=\(value); Path=/ui; HttpOnly; SameSite=Strict" + (configuration.secure ? "; Secure" : "")
    }

    func expiredCookie(_ name: String) -> String {
        cookie(name, "") + "; Max-Age=0"
    }

    func session(_ request: Request) -> SessionStore.Session? {
        Web.cookie(Dashboard.sessionCookie, in: request).flatMap { sessions.use($0) }
    }

    func chrome(_ session: SessionStore.Session) -> Chrome {
        Chrome(signedIn: true, account: configuration.credentials.accountName, csrf: session.csrfToken)
    }

    /// Only a path of the dashboard itself is followed after sign-in (never another site's).
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/ui"), !next.hasPrefix("//"), !next.contains("\\"),
            !next.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }),
            !next.hasPrefix("/ui/sign-") && !next.hasPrefix(SignInLink.path)
        else { return "/ui" }
        return next
    }

    /// A page for a signed-in browser; anyone else is sent to sign in, and comes back afterwards.
    func page(_ request: Request, _ body: (Chrome) async throws -> Response) async throws -> Response {
        guard let session = session(request) else {
            let target = request.uri.path + (request.uri.query.map { "?\($0)" } ?? "")
            return Web.redirect("/ui/sign-in?next=\(Web.queryValue(target))")
        }
        return await handlingErrors(chrome(session)) { try await body(chrome(session)) }
    }

    /// A state-changing form: refused with 403 without a live session or without that session's
    /// CSRF token, so another site cannot make a signed-in browser act (SameSite=Strict already
    /// keeps the cookie from cross-site posts; the token does not depend on the browser honouring it).
    func form(_ request: Request, _ body: (SessionStore.Session, [String: String]) async throws -> Response) async throws -> Response {
        let fields = (try? await Web.form(request)) ?? [:]
        guard let session = session(request) else {
            return render(ProblemPage(chrome: Chrome(signedIn: false, account: "", csrf: ""), heading: "Not signed in",
                message: "Sign in to the dashboard before changing anything."), "problem", status: .forbidden)
        }
        guard let token = fields["csrf"], Secrets.constantTimeEqual(token, session.csrfToken) else {
            logger.notice("dashboard form refused: missing or wrong CSRF token", metadata: ["path": "\(request.uri.path)"])
            return render(ProblemPage(chrome: chrome(session), heading: "Refused",
                message: "The form did not carry this session's token. Reload the page and try again."), "problem", status: .forbidden)
        }
        return await handlingErrors(chrome(session)) { try await body(session, fields) }
    }

    /// Engine errors as a page (404 for a missing pool, job, task or file; 409 for a state that
    /// forbids the action); anything else is logged and shown without its details.
    func handlingErrors(_ chrome: Chrome, _ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as BookendError {
            let status: HTTPResponse.Status
            let heading: String
            switch error.kind {
            case .notFound: (status, heading) = (.notFound, "Not found")
            case .conflict: (status, heading) = (.conflict, "Not possible now")
            case .invalidRequest, .preconditionFailed: (status, heading) = (.badRequest, "Not possible")
            case .internalError:
                logger.error("dashboard page failed", metadata: ["error": "\(error)"])
                (status, heading) = (.internalServerError, "Something went wrong")
            }
            return render(ProblemPage(chrome: chrome, heading: heading, message: "\(error.message) (\(error.code))"), "problem", status: status)
        } catch {
            logger.error("dashboard page failed", metadata: ["error": "\(error)"])
            return render(ProblemPage(chrome: chrome, heading: "Something went wrong", message: "The page could not be made; the daemon's log says why."),
                "problem", status: .internalServerError)
        }
    }

    func render(_ page: Any, _ template: String, status: HTTPResponse.Status = .ok, cookies: [String] = []) -> Response {
        guard let html = library.render(page, withTemplate: template) else {
            logger.error("dashboard template missing", metadata: ["template": "\(template)"])
            return Web.html("Internal error", status: .internalServerError)
        }
        return Web.html(html, status: status, cookies: cookies)
    }

    // MARK: Sign-in

    /// The sign-in form, with a token in a cookie of its own that the post must repeat: a page of
    /// another site cannot sign a browser in to this dashboard with a key of its choosing.
    func signInPage(next: String?, message: String?, status: HTTPResponse.Status = .ok, account: String? = nil) -> Response {
        let token = Secrets.randomToken()
        return render(
            SignInPage(chrome: Chrome(signedIn: false, account: "", csrf: ""), message: message, formToken: token,
                // Only what the person typed is filled in: the page tells strangers nothing, not even the account name.
                next: Dashboard.safeNext(next), account: account ?? ""),
            "signIn", status: status, cookies: [cookie(Dashboard.signInCookie, token)])
    }

    func signIn(_ request: Request) async throws -> Response {
        let fields = (try? await Web.form(request)) ?? [:]
        guard let token = fields["form"], let expected = Web.cookie(Dashboard.signInCookie, in: request),
            Secrets.constantTimeEqual(token, expected)
        else {
            return signInPage(next: fields["next"], message: "The sign-in form expired. Please try again.", status: .forbidden)
        }
        guard configuration.credentials.accepts(accountName: fields["account"] ?? "", base64Key: fields["key"] ?? "") else {
            logger.notice("dashboard sign-in refused: wrong account name or key")
            return signInPage(next: fields["next"], message: "The account name or key is not right.", status: .forbidden, account: fields["account"])
        }
        return startSession(next: fields["next"])
    }

    func signInWithLink(_ request: Request) -> Response {
        if let refusal = SignInLink.verify(Web.query(request), credentials: configuration.credentials, usedNonces: usedNonces) {
            logger.notice("dashboard sign-in link refused", metadata: ["reason": "\(refusal)"])
            return signInPage(next: nil, message: refusal.message, status: .forbidden)
        }
        return startSession(next: nil)
    }

    func startSession(next: String?) -> Response {
        let session = sessions.create()
        return Web.redirect(Dashboard.safeNext(next), cookies: [cookie(Dashboard.sessionCookie, session.id), expiredCookie(Dashboard.signInCookie)])
    }

    // MARK: Live updates

    struct LiveAnswer: Encodable {
        var active: Bool
        var parts: [String: String]
    }

    /// The job page's changing parts as HTML, for the script to swap in; 401 without a session
    /// (the script then stops, and the page still shows what it had).
    func live(_ request: Request, jobID: String) async throws -> Response {
        guard let session = session(request) else {
            return Web.text(Data("{\"error\":\"not signed in\"}".utf8), contentType: "application/json", status: .unauthorized)
        }
        return await handlingErrors(chrome(session)) {
            let query = Pages.TaskQuery(Web.query(request))
            let data = try await pages.jobData(jobID: jobID, query: query)
            let live = pages.live(data, query: query)
            var parts: [String: String] = [:]
            for (name, template) in [("counts", "jobCounts"), ("nodes", "jobNodes"), ("timeline", "jobTimeline"), ("tasks", "jobTasks")] {
                parts[name] = library.render(live, withTemplate: template) ?? ""
            }
            let body = try JSONEncoder().encode(LiveAnswer(active: Pages.isLive(data), parts: parts))
            return Web.text(body, contentType: "application/json")
        }
    }

    // MARK: Files

    enum FileOwner: Sendable {
        case task(jobID: String, taskID: String)
        case node(poolID: String, nodeID: String)
    }

    /// Largest file the dashboard shows whole; the API serves any size (with ranges) to clients.
    static let largestFile: Int64 = 32 * 1024 * 1024

    /// A task's or node's file as plain text, opened by the engine beneath its folder without
    /// following links; `nosniff` keeps a browser from taking the text for HTML.
    func file(_ owner: FileOwner, path: String) async throws -> Response {
        let opened: OpenedFile
        switch owner {
        case .task(let jobID, let taskID): opened = try await engine.openTaskFile(jobID: jobID, taskID: taskID, path: path)
        case .node(let poolID, let nodeID): opened = try await engine.openNodeFile(poolID: poolID, nodeID: nodeID, path: path)
        }
        let size = opened.info.contentLength
        let count = Int(min(size, Dashboard.largestFile))
        var data = try await engine.lookup { _ in try FileAccess.readChunk(opened.descriptor, at: 0, upTo: count) }
        if size > Dashboard.largestFile {
            data.append(Data("\n[… \(Format.bytes(size - Dashboard.largestFile)) more; fetch the whole file through the API]\n".utf8))
        }
        return Web.text(data, contentType: "text/plain; charset=utf-8")
    }

    // MARK: Actions

    func confirmJob(_ chrome: Chrome, jobID: String, action name: String) async throws -> Response {
        guard let action = JobAction(rawValue: name) else { throw BookendError(.notFound, "ActionNotFound", "There is no action \(name)") }
        let job = try await engine.lookup { engine in try engine.job(id: jobID) }
        let choices = action == .disable
            ? [Option(value: "requeue", label: "Requeue them (stop now, run again later)", selected: true),
               Option(value: "terminate", label: "Terminate them (stop now, fail)", selected: false),
               Option(value: "wait", label: "Let them finish", selected: false)]
            : []
        return render(
            ConfirmPage(
                chrome: chrome, label: action.label, subject: "Job \(job.id)", explanation: action.explanation, backHref: Links.job(job.id),
                actionHref: Links.job(job.id) + "/actions/\(action.rawValue)", style: action.style, hasChoices: !choices.isEmpty,
                choiceLabel: "Tasks running now", choices: choices),
            "confirm")
    }

    func actOnJob(jobID: String, action name: String, fields: [String: String]) async throws -> Response {
        guard let action = JobAction(rawValue: name) else { throw BookendError(.notFound, "ActionNotFound", "There is no action \(name)") }
        let job = try await engine.lookup { engine in try engine.job(id: jobID) }
        switch action {
        case .terminate: try await engine.terminateJob(id: job.id, terminateReason: "UserTerminate")
        case .disable:
            let option = fields["option"] ?? "requeue"
            guard ["requeue", "terminate", "wait"].contains(option) else {
                throw BookendError(.invalidRequest, "InvalidPropertyValue", "Running tasks can be requeued, terminated or left to finish")
            }
            try await engine.disableJob(id: job.id, disableTasks: option)
        case .enable: try await engine.enableJob(id: job.id)
        case .delete:
            try await engine.deleteJob(id: job.id)
            return Web.redirect(Links.root)
        }
        logger.info("dashboard action", metadata: ["job": "\(job.id)", "action": "\(action.rawValue)"])
        return Web.redirect(Links.job(job.id))
    }

    func confirmTask(_ chrome: Chrome, jobID: String, taskID: String, action name: String) async throws -> Response {
        guard let action = TaskAction(rawValue: name) else { throw BookendError(.notFound, "ActionNotFound", "There is no action \(name)") }
        let task = try await engine.lookup { engine in try engine.task(jobID: jobID, taskID: taskID) }
        return render(
            ConfirmPage(
                chrome: chrome, label: action.label, subject: "Task \(task.id)", explanation: action.explanation, backHref: Links.task(jobID, task.id),
                actionHref: Links.task(jobID, task.id) + "/actions/\(action.rawValue)", style: action.style, hasChoices: false,
                choiceLabel: "", choices: []),
            "confirm")
    }

    func actOnTask(jobID: String, taskID: String, action name: String) async throws -> Response {
        guard let action = TaskAction(rawValue: name) else { throw BookendError(.notFound, "ActionNotFound", "There is no action \(name)") }
        switch action {
        case .terminate: try await engine.terminateTask(jobID: jobID, taskID: taskID)
        case .reactivate: try await engine.reactivateTask(jobID: jobID, taskID: taskID)
        }
        logger.info("dashboard action", metadata: ["job": "\(jobID)", "task": "\(taskID)", "action": "\(action.rawValue)"])
        return Web.redirect(Links.task(jobID, taskID))
    }
}

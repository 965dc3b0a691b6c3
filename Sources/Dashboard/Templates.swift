import Mustache

// The dashboard's Mustache templates, compiled into the binary. Every value from users (ids, display
// names, command lines, environment values, file contents, failure messages) goes through `{{ }}`,
// which escapes it for HTML; `{{{ }}}` is never used. Pages extend `layout` through Mustache
// inheritance; the job page's live parts are partials that the live endpoint renders alone.

enum Templates {
    static let all: [String: String] = [
        "layout": layout, "time": time, "countbar": countbar, "signIn": signIn, "overview": overview, "pool": pool,
        "job": job, "jobCounts": jobCounts, "jobNodes": jobNodes, "jobTimeline": jobTimeline, "jobTasks": jobTasks,
        "task": task, "why": why, "confirm": confirm, "problem": problem,
    ]

    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in all { try library.register(text, named: name) }
        return library
    }

    static let layout = #"""
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{$title}}Bookend{{/title}} · Bookend</title>
    <link rel="stylesheet" href="/ui/static/dashboard.css">
    <script src="/ui/static/dashboard.js" defer></script>
    </head>
    <body>
    <header class="top">
    <a class="brand" href="/ui">Bookend</a>
    {{#chrome.signedIn}}
    <nav aria-label="Main"><a href="/ui">Overview</a></nav>
    <span class="account">Account <strong>{{chrome.account}}</strong></span>
    <form method="post" action="/ui/sign-out" class="inline"><input type="hidden" name="csrf" value="{{chrome.csrf}}"><button type="submit" class="link" id="sign-out">Sign out</button></form>
    {{/chrome.signedIn}}
    </header>
    <main>
    {{$content}}{{/content}}
    </main>
    </body>
    </html>
    """#

    static let time = #"<time datetime="{{iso}}" title="{{iso}}">{{text}}</time>"#

    static let countbar = #"""
    <svg class="countbar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label="{{summary}}">{{#segments}}<rect class="{{bucket}}" x="{{x}}" y="0" width="{{width}}" height="10"><title>{{label}}</title></rect>{{/segments}}</svg>
    """#

    static let signIn = #"""
    {{<layout}}
    {{$title}}Sign in{{/title}}
    {{$content}}
    <section class="signin panel">
    <h1>Sign in</h1>
    {{#message}}<p class="message" role="alert">{{message}}</p>{{/message}}
    <form method="post" action="/ui/sign-in">
    <input type="hidden" name="form" value="{{formToken}}">
    <input type="hidden" name="next" value="{{next}}">
    <label for="account">Account name</label>
    <input type="text" id="account" name="account" value="{{account}}" autocomplete="username" required>
    <label for="key">Account key</label>
    <input type="password" id="key" name="key" autocomplete="current-password" required>
    <p><button type="submit" class="primary" id="sign-in">Sign in</button></p>
    </form>
    <p class="hint">Or run <code>bookend ui-link</code> where the key is at hand and open the link it prints.</p>
    </section>
    {{/content}}
    {{/layout}}
    """#

    static let overview = #"""
    {{<layout}}
    {{$title}}Overview{{/title}}
    {{$content}}
    <h1>Overview</h1>
    <h2 id="pools">Pools</h2>
    <div class="table-wrap">
    <table aria-labelledby="pools">
    <thead><tr><th scope="col">Pool</th><th scope="col">State</th><th scope="col">Nodes by state</th><th scope="col" class="num">Nodes</th><th scope="col" class="num">Slots per node</th></tr></thead>
    <tbody>
    {{#pools}}
    <tr><th scope="row"><a href="{{href}}">{{id}}</a>{{#displayName}} <span class="none">{{displayName}}</span>{{/displayName}}</th>
    <td><span class="badge {{state}}">{{state}}</span> <span class="none">{{allocationState}}</span></td>
    <td><div class="chips">{{#nodeStates}}<span class="badge {{state}}">{{state}} {{count}}</span>{{/nodeStates}}{{^nodeStates}}<span class="none">no nodes</span>{{/nodeStates}}</div></td>
    <td class="num">{{nodes}}</td><td class="num">{{slots}}</td></tr>
    {{/pools}}
    {{^pools}}<tr><td colspan="5" class="none">No pools.</td></tr>{{/pools}}
    </tbody>
    </table>
    </div>
    <h2 id="jobs">Jobs</h2>
    <div class="table-wrap">
    <table aria-labelledby="jobs">
    <thead><tr><th scope="col">Job</th><th scope="col">Pool</th><th scope="col">State</th><th scope="col">Created</th><th scope="col">Tasks</th><th scope="col" class="num">Active</th><th scope="col" class="num">Running</th><th scope="col" class="num">Succeeded</th><th scope="col" class="num">Failed</th></tr></thead>
    <tbody>
    {{#jobs}}
    <tr><th scope="row"><a href="{{href}}">{{id}}</a>{{#displayName}} <span class="none">{{displayName}}</span>{{/displayName}}</th>
    <td>{{poolId}}</td><td><span class="badge {{state}}">{{state}}</span></td>
    <td>{{#created}}{{>time}}{{/created}}</td>
    <td>{{#bar}}{{>countbar}}{{/bar}}</td>
    <td class="num">{{counts.active}}</td><td class="num">{{counts.running}}</td><td class="num">{{counts.succeeded}}</td><td class="num">{{counts.failed}}</td></tr>
    {{/jobs}}
    {{^jobs}}<tr><td colspan="9" class="none">No jobs.</td></tr>{{/jobs}}
    </tbody>
    </table>
    </div>
    {{/content}}
    {{/layout}}
    """#

    static let pool = #"""
    {{<layout}}
    {{$title}}Pool {{id}}{{/title}}
    {{$content}}
    <p class="crumbs"><a href="/ui">Overview</a> › Pool</p>
    <h1>{{id}}{{#displayName}}<span class="sub">{{displayName}}</span>{{/displayName}}</h1>
    <div class="grid">
    <section class="panel"><dl class="facts">
    <dt>State</dt><dd><span class="badge {{state}}">{{state}}</span></dd>
    <dt>Allocation</dt><dd>{{allocationState}}</dd>
    <dt>Nodes</dt><dd>{{current}} of {{target}} wanted</dd>
    <dt>Slots per node</dt><dd>{{slots}}</dd>
    <dt>Created</dt><dd>{{#created}}{{>time}}{{/created}}</dd>
    </dl></section>
    </div>
    <h2 id="nodes">Nodes</h2>
    <div class="table-wrap">
    <table aria-labelledby="nodes">
    <thead><tr><th scope="col">Node</th><th scope="col">State</th><th scope="col">Scheduling</th><th scope="col" class="num">Running tasks</th><th scope="col" class="num">Slots in use</th><th scope="col" class="num">Slots</th><th scope="col" class="num">Tasks run</th><th scope="col" class="num">Succeeded</th><th scope="col">Since</th></tr></thead>
    <tbody>
    {{#nodes}}
    <tr><th scope="row">{{id}}</th><td><span class="badge {{state}}">{{state}}</span></td><td>{{scheduling}}</td>
    <td class="num">{{running}}</td><td class="num">{{slotsUsed}}</td><td class="num">{{slots}}</td><td class="num">{{tasksRun}}</td><td class="num">{{tasksSucceeded}}</td>
    <td>{{#since}}{{>time}}{{/since}}</td></tr>
    {{/nodes}}
    {{^nodes}}<tr><td colspan="9" class="none">No nodes.</td></tr>{{/nodes}}
    </tbody>
    </table>
    </div>
    {{/content}}
    {{/layout}}
    """#

    static let job = #"""
    {{<layout}}
    {{$title}}Job {{id}}{{/title}}
    {{$content}}
    <div id="job" {{#liveURL}}data-live-url="{{liveURL}}"{{/liveURL}} data-live-state="{{liveState}}">
    <p class="crumbs"><a href="/ui">Overview</a> › Job</p>
    <h1>{{id}}{{#displayName}}<span class="sub">{{displayName}}</span>{{/displayName}}</h1>
    <div class="actions">
    {{#actions}}<a class="button {{style}}" href="{{href}}" id="action-{{name}}">{{label}}</a>{{/actions}}
    <a class="button" href="{{whyHref}}">Why waiting?</a>
    </div>
    <div class="grid">
    <section class="panel" aria-label="Job facts"><dl class="facts">
    <dt>State</dt><dd><span class="badge {{state}}" id="job-state">{{state}}</span></dd>
    <dt>Pool</dt><dd><a href="{{poolHref}}">{{poolId}}</a></dd>
    <dt>Created</dt><dd>{{#created}}{{>time}}{{/created}}</dd>
    <dt>Started</dt><dd>{{#started}}{{>time}}{{/started}}{{^started}}<span class="none">—</span>{{/started}}</dd>
    <dt>Ended</dt><dd>{{#ended}}{{>time}}{{/ended}}{{^ended}}<span class="none">—</span>{{/ended}}</dd>
    <dt>Terminate reason</dt><dd id="terminate-reason">{{#terminateReason}}{{terminateReason}}{{/terminateReason}}{{^terminateReason}}<span class="none">—</span>{{/terminateReason}}</dd>
    <dt>Priority</dt><dd>{{priority}}</dd>
    </dl></section>
    <section class="panel" aria-labelledby="counts-title"><h2 id="counts-title" class="sr">Tasks</h2>
    <div data-live-part="counts">{{#live}}{{>jobCounts}}{{/live}}</div>
    </section>
    </div>
    {{#hasPreparation}}
    <h2 id="prep-release">Preparation and release on each node</h2>
    <div data-live-part="nodes">{{#live}}{{>jobNodes}}{{/live}}</div>
    {{/hasPreparation}}
    <h2 id="timeline-title">Timeline</h2>
    <div data-live-part="timeline">{{#live}}{{>jobTimeline}}{{/live}}</div>
    <h2 id="tasks-title">Tasks</h2>
    <form method="get" class="filter" action="{{href}}">
    <label for="state-filter">State</label>
    <select id="state-filter" name="state">{{#stateOptions}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/stateOptions}}</select>
    <button type="submit">Show</button>
    </form>
    <div data-live-part="tasks">{{#live}}{{>jobTasks}}{{/live}}</div>
    </div>
    {{/content}}
    {{/layout}}
    """#

    static let jobCounts = #"""
    <div class="counts" id="task-counts">
    <span><span class="n" data-count="active">{{counts.active}}</span><span class="label">active</span></span>
    <span><span class="n" data-count="running">{{counts.running}}</span><span class="label">running</span></span>
    <span><span class="n" data-count="succeeded">{{counts.succeeded}}</span><span class="label">succeeded</span></span>
    <span><span class="n" data-count="failed">{{counts.failed}}</span><span class="label">failed</span></span>
    </div>
    {{#bar}}{{>countbar}}{{/bar}}
    """#

    static let jobNodes = #"""
    <div class="table-wrap">
    <table id="prep-release-table" aria-labelledby="prep-release">
    <thead>
    <tr><th scope="col" rowspan="2">Node</th><th scope="colgroup" colspan="6">Preparation</th><th scope="colgroup" colspan="5">Release</th></tr>
    <tr><th scope="col">State</th><th scope="col" class="num">Exit code</th><th scope="col">Started</th><th scope="col">Ended</th><th scope="col" class="num">Retries</th><th scope="col">Output</th>
    <th scope="col">State</th><th scope="col" class="num">Exit code</th><th scope="col">Started</th><th scope="col">Ended</th><th scope="col">Output</th></tr>
    </thead>
    <tbody>
    {{#nodes}}
    <tr data-node="{{nodeId}}"><th scope="row"><a href="{{poolHref}}">{{nodeId}}</a></th>
    <td><span class="badge {{prepState}}" data-field="prep-state">{{prepState}}</span>{{#prepResult}} <span class="badge {{prepResult}}" data-field="prep-result">{{prepResult}}</span>{{/prepResult}}</td>
    <td class="num" data-field="prep-exit">{{prepExit}}</td>
    <td>{{#prepStart}}{{>time}}{{/prepStart}}</td><td>{{#prepEnd}}{{>time}}{{/prepEnd}}{{^prepEnd}}<span class="none">—</span>{{/prepEnd}}</td>
    <td class="num">{{prepRetries}}</td>
    <td><a href="{{prepStdout}}" class="stdout">stdout</a> · <a href="{{prepStderr}}">stderr</a></td>
    {{#hasRelease}}
    <td><span class="badge {{releaseState}}" data-field="release-state">{{releaseState}}</span>{{#releaseResult}} <span class="badge {{releaseResult}}" data-field="release-result">{{releaseResult}}</span>{{/releaseResult}}</td>
    <td class="num" data-field="release-exit">{{releaseExit}}</td>
    <td>{{#releaseStart}}{{>time}}{{/releaseStart}}</td><td>{{#releaseEnd}}{{>time}}{{/releaseEnd}}{{^releaseEnd}}<span class="none">—</span>{{/releaseEnd}}</td>
    <td><a href="{{releaseStdout}}">stdout</a> · <a href="{{releaseStderr}}">stderr</a></td>
    {{/hasRelease}}
    {{^hasRelease}}<td colspan="5" class="none" data-field="release-state">not started</td>{{/hasRelease}}
    </tr>
    {{/nodes}}
    {{^nodes}}<tr><td colspan="12" class="none">No node has run the preparation task yet.</td></tr>{{/nodes}}
    </tbody>
    </table>
    </div>
    """#

    static let jobTimeline = #"""
    <figure class="timeline panel" id="timeline" data-start="{{startMs}}" data-end="{{endMs}}">
    {{#hasLanes}}
    {{#truncated}}<p class="none">The latest {{timelineTasks}} task runs, with every preparation and release.</p>{{/truncated}}
    <div class="axis"><span>{{#startTime}}{{>time}}{{/startTime}}</span><span>{{#endTime}}{{>time}}{{/endTime}}</span></div>
    {{#lanes}}
    <div class="lane" data-node="{{nodeId}}">
    <div class="lane-name"><a href="{{poolHref}}" title="{{nodeId}}">{{nodeId}}</a></div>
    <svg class="lane-bars" viewBox="0 0 1000 {{height}}" preserveAspectRatio="none" height="{{pixelHeight}}" role="img" aria-label="Runs on {{nodeId}}">
    {{#bars}}<a href="{{href}}"><rect class="{{kind}} {{outcome}}" data-kind="{{kind}}" data-task="{{taskId}}" data-outcome="{{outcome}}" data-start="{{startMs}}" data-end="{{endMs}}" x="{{x}}" y="{{y}}" width="{{width}}" height="{{barHeight}}"><title>{{title}}</title></rect></a>{{/bars}}
    </svg>
    </div>
    {{/lanes}}
    <figcaption class="legend"><span><i class="success"></i>succeeded</span><span><i class="failure"></i>failed</span><span><i class="running"></i>running</span><span><i class="interrupted"></i>interrupted</span><span><i class="bookend"></i>preparation / release (dashed)</span></figcaption>
    {{/hasLanes}}
    {{^hasLanes}}<p class="none">Nothing has run yet.</p>{{/hasLanes}}
    </figure>
    """#

    static let jobTasks = #"""
    <div class="table-wrap">
    <table id="task-table" aria-labelledby="tasks-title">
    <thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col" class="optional">Node</th><th scope="col" class="num">Exit code</th><th scope="col" class="optional">Started</th><th scope="col" class="optional">Ended</th><th scope="col" class="num optional">Retries</th><th scope="col" class="optional">Command line</th></tr></thead>
    <tbody>
    {{#tasks}}
    <tr data-task="{{id}}"><th scope="row"><a href="{{href}}">{{id}}</a></th><td><span class="badge {{state}}">{{state}}</span>{{#result}} <span class="badge {{result}}">{{result}}</span>{{/result}}</td>
    <td class="optional">{{node}}</td><td class="num">{{exit}}</td>
    <td class="optional">{{#taskStarted}}{{>time}}{{/taskStarted}}</td><td class="optional">{{#taskEnded}}{{>time}}{{/taskEnded}}</td><td class="num optional">{{retries}}</td>
    <td class="wide optional"><code class="command">{{commandLine}}</code></td></tr>
    {{/tasks}}
    {{^tasks}}<tr><td colspan="8" class="none">No tasks{{#filtered}} in this state{{/filtered}}.</td></tr>{{/tasks}}
    </tbody>
    </table>
    </div>
    <nav class="pager" aria-label="Task pages">{{#firstHref}}<a href="{{firstHref}}">First page</a>{{/firstHref}}{{#nextHref}}<a href="{{nextHref}}" id="next-page">Next page</a>{{/nextHref}}</nav>
    """#

    static let task = #"""
    {{<layout}}
    {{$title}}Task {{id}}{{/title}}
    {{$content}}
    <p class="crumbs"><a href="/ui">Overview</a> › <a href="{{jobHref}}">Job {{jobId}}</a> › Task</p>
    <h1>{{id}}{{#displayName}}<span class="sub">{{displayName}}</span>{{/displayName}}</h1>
    <div class="actions">
    {{#actions}}<a class="button {{style}}" href="{{href}}" id="action-{{name}}">{{label}}</a>{{/actions}}
    <a class="button" href="{{whyHref}}">Why waiting?</a>
    </div>
    <div class="grid">
    <section class="panel" aria-label="Task facts"><dl class="facts">
    <dt>State</dt><dd><span class="badge {{state}}">{{state}}</span>{{#result}} <span class="badge {{result}}">{{result}}</span>{{/result}}</dd>
    <dt>Node</dt><dd>{{node}}</dd>
    <dt>Exit code</dt><dd>{{exit}}</dd>
    <dt>Created</dt><dd>{{#created}}{{>time}}{{/created}}</dd>
    <dt>Started</dt><dd>{{#started}}{{>time}}{{/started}}{{^started}}<span class="none">—</span>{{/started}}</dd>
    <dt>Ended</dt><dd>{{#ended}}{{>time}}{{/ended}}{{^ended}}<span class="none">—</span>{{/ended}}</dd>
    <dt>Retries</dt><dd>{{retries}}</dd>
    {{#failure}}<dt>Failure</dt><dd>{{failure}}</dd>{{/failure}}
    </dl></section>
    </div>
    <h2>Command line</h2>
    <pre id="command-line">{{commandLine}}</pre>
    {{#hasEnvironment}}
    <h2 id="environment">Environment</h2>
    <div class="table-wrap"><table aria-labelledby="environment"><thead><tr><th scope="col">Name</th><th scope="col">Value</th></tr></thead><tbody>
    {{#environment}}<tr><th scope="row"><code>{{name}}</code></th><td class="wide"><code>{{value}}</code></td></tr>{{/environment}}
    </tbody></table></div>
    {{/hasEnvironment}}
    <h2 id="attempts">Attempts</h2>
    <div class="table-wrap">
    <table aria-labelledby="attempts">
    <thead><tr><th scope="col" class="num">Attempt</th><th scope="col">Node</th><th scope="col">Outcome</th><th scope="col" class="num">Exit code</th><th scope="col">Failure</th><th scope="col">Started</th><th scope="col">Ended</th></tr></thead>
    <tbody>
    {{#attempts}}
    <tr><th scope="row" class="num">{{attempt}}</th><td>{{nodeId}}</td><td><span class="badge {{outcome}}">{{outcome}}</span></td><td class="num">{{exit}}</td>
    <td class="wide">{{failure}}</td><td>{{#attemptStarted}}{{>time}}{{/attemptStarted}}</td><td>{{#attemptEnded}}{{>time}}{{/attemptEnded}}{{^attemptEnded}}<span class="none">—</span>{{/attemptEnded}}</td></tr>
    {{/attempts}}
    {{^attempts}}<tr><td colspan="7" class="none">The task has not run yet.</td></tr>{{/attempts}}
    </tbody>
    </table>
    </div>
    {{#outputs}}
    <h2 id="{{name}}-title">{{name}} <span class="none">(last {{shown}})</span></h2>
    {{#available}}<pre id="{{name}}-tail">{{text}}</pre>
    <p><a href="{{href}}" id="{{name}}-file">The whole file</a> <span class="none">({{size}})</span></p>{{/available}}
    {{^available}}<p class="none">{{missing}}</p>{{/available}}
    {{/outputs}}
    {{/content}}
    {{/layout}}
    """#

    static let why = #"""
    {{<layout}}
    {{$title}}Why waiting{{/title}}
    {{$content}}
    <p class="crumbs"><a href="/ui">Overview</a> › <a href="{{jobHref}}">Job {{jobId}}</a>{{#taskId}} › <a href="{{taskHref}}">Task {{taskId}}</a>{{/taskId}} › Why waiting</p>
    <h1>Is {{subject}} waiting, and why?</h1>
    <section class="panel">
    <dl class="facts">
    <dt>Answer</dt><dd><span class="badge {{state}}" id="why-state">{{state}}</span></dd>
    <dt>Code</dt><dd><code id="why-code">{{code}}</code></dd>
    <dt>Explanation</dt><dd>{{message}}</dd>
    {{#dependencyId}}<dt>Waits for</dt><dd><a href="{{dependencyHref}}">{{dependencyId}}</a></dd>{{/dependencyId}}
    </dl>
    <p class="none">{{meaning}}</p>
    </section>
    {{#hasFailures}}
    <h2 id="failed-prep">Nodes where the preparation task failed</h2>
    <div class="table-wrap"><table aria-labelledby="failed-prep"><thead><tr><th scope="col">Node</th><th scope="col" class="num">Exit code</th><th scope="col">Failure</th><th scope="col">End of stderr</th></tr></thead><tbody>
    {{#failures}}<tr><th scope="row">{{nodeId}}</th><td class="num">{{exit}}</td><td>{{failure}}</td><td class="wide"><pre>{{stderr}}</pre></td></tr>{{/failures}}
    </tbody></table></div>
    {{/hasFailures}}
    {{/content}}
    {{/layout}}
    """#

    static let confirm = #"""
    {{<layout}}
    {{$title}}{{label}}{{/title}}
    {{$content}}
    <p class="crumbs"><a href="/ui">Overview</a> › <a href="{{backHref}}">{{subject}}</a> › {{label}}</p>
    <section class="panel signin">
    <h1>{{label}}?</h1>
    <p>{{explanation}}</p>
    <form method="post" action="{{actionHref}}">
    <input type="hidden" name="csrf" value="{{chrome.csrf}}">
    {{#hasChoices}}
    <label for="option">{{choiceLabel}}</label>
    <select id="option" name="option">{{#choices}}<option value="{{value}}">{{label}}</option>{{/choices}}</select>
    {{/hasChoices}}
    <p class="actions"><button type="submit" class="primary {{style}}" id="confirm">{{label}}</button> <a class="button" href="{{backHref}}">Cancel</a></p>
    </form>
    </section>
    {{/content}}
    {{/layout}}
    """#

    static let problem = #"""
    {{<layout}}
    {{$title}}{{heading}}{{/title}}
    {{$content}}
    <section class="panel">
    <h1>{{heading}}</h1>
    <p class="message" role="alert">{{message}}</p>
    <p><a href="/ui">Back to the overview</a></p>
    </section>
    {{/content}}
    {{/layout}}
    """#
}

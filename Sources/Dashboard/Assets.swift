// The dashboard's stylesheet and script, compiled into the binary: `bookend serve` reads no file to
// serve its pages, and there is no build step for them. Both are served from /ui/static/, the only
// place the Content-Security-Policy lets styles and scripts come from.

enum Assets {
    static let stylesheet = #"""
    :root {
      color-scheme: light dark;
      --bg: #f6f7f9; --panel: #ffffff; --text: #1d2330; --muted: #5d6677; --border: #d9dde5;
      --accent: #2557d6; --accent-text: #ffffff; --head: #eef1f6;
      --ok: #2e8b57; --fail: #d1383d; --run: #2f7fd8; --wait: #9aa3b2; --off: #b58a1b;
      --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
    }
    @media (prefers-color-scheme: dark) {
      :root {
        --bg: #12151b; --panel: #1b2029; --text: #e3e7ef; --muted: #98a2b3; --border: #2e3543;
        --accent: #6e9bff; --accent-text: #0b1020; --head: #232a36;
        --ok: #45b07a; --fail: #ef5f63; --run: #5aa2f0; --wait: #6b7485; --off: #d6aa3c;
      }
    }
    * { box-sizing: border-box; }
    body { margin: 0; background: var(--bg); color: var(--text);
      font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
    a { color: var(--accent); text-decoration: none; }
    a:hover, a:focus { text-decoration: underline; }
    header.top { display: flex; flex-wrap: wrap; align-items: center; gap: .5rem 1.25rem; padding: .6rem 1.25rem;
      background: var(--panel); border-bottom: 1px solid var(--border); }
    header.top .brand { font-weight: 700; font-size: 1.1rem; color: var(--text); letter-spacing: .02em; }
    header.top nav { display: flex; gap: 1rem; flex: 1; }
    header.top .account { color: var(--muted); font-size: .9rem; }
    main { max-width: 1440px; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
    h1 { font-size: 1.45rem; margin: .6rem 0 .2rem; word-break: break-all; }
    h1 .sub { color: var(--muted); font-weight: 400; font-size: 1rem; margin-left: .4rem; }
    h2 { font-size: 1.1rem; margin: 1.6rem 0 .5rem; }
    .crumbs { color: var(--muted); font-size: .9rem; }
    .panel { background: var(--panel); border: 1px solid var(--border); border-radius: 8px; padding: .9rem 1rem; }
    .grid { display: grid; gap: 1rem; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); align-items: start; }
    dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }
    dl.facts dt { color: var(--muted); }
    dl.facts dd { margin: 0; word-break: break-word; }
    .table-wrap { overflow-x: auto; background: var(--panel); border: 1px solid var(--border); border-radius: 8px; }
    table { border-collapse: collapse; width: 100%; font-size: .92rem; }
    th, td { padding: .45rem .7rem; border-bottom: 1px solid var(--border); text-align: left; vertical-align: top; white-space: nowrap; }
    thead th { background: var(--head); font-weight: 600; position: sticky; top: 0; }
    tbody tr:last-child td, tbody tr:last-child th { border-bottom: 0; }
    tbody th { font-weight: 500; }
    td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
    td.wide { white-space: normal; min-width: 14rem; max-width: 32rem; overflow-wrap: anywhere; }
    .none { color: var(--muted); }
    .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
    .badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .8rem; font-weight: 600;
      background: var(--head); color: var(--text); border: 1px solid var(--border); }
    .badge.success, .badge.completed, .badge.idle, .badge.enabled { color: var(--ok); border-color: var(--ok); }
    .badge.failure, .badge.blocked, .badge.starttaskfailed, .badge.unusable { color: var(--fail); border-color: var(--fail); }
    .badge.running, .badge.active, .badge.preparing, .badge.waiting { color: var(--run); border-color: var(--run); }
    .badge.disabled, .badge.disabling, .badge.terminating, .badge.deleting, .badge.interrupted { color: var(--off); border-color: var(--off); }
    .chips { display: flex; flex-wrap: wrap; gap: .3rem; }
    .actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .6rem 0; }
    .button, button { display: inline-block; font: inherit; font-size: .9rem; padding: .35rem .8rem; border-radius: 6px;
      border: 1px solid var(--border); background: var(--panel); color: var(--text); cursor: pointer; }
    .button.primary, button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); }
    .button.danger, button.danger { border-color: var(--fail); color: var(--fail); }
    button.danger.primary { background: var(--fail); color: #fff; }
    button.link { border: 0; background: none; color: var(--accent); padding: 0; }
    form.inline { display: inline; }
    .counts { display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; align-items: baseline; margin-bottom: .5rem; }
    .counts .n { font-size: 1.3rem; font-weight: 650; font-variant-numeric: tabular-nums; }
    .counts .label { color: var(--muted); font-size: .85rem; margin-left: .25rem; }
    svg.countbar { width: 100%; height: 10px; display: block; border-radius: 4px; background: var(--head); }
    td svg.countbar { min-width: 140px; }
    svg .succeeded, svg .success { fill: var(--ok); }
    svg .failed, svg .failure { fill: var(--fail); }
    svg .running { fill: var(--run); }
    svg .active { fill: var(--wait); }
    svg .interrupted { fill: var(--off); }
    .timeline { margin: 0; }
    .timeline .axis { display: flex; justify-content: space-between; color: var(--muted); font-size: .82rem; margin-left: 13rem; }
    .lane { display: grid; grid-template-columns: 13rem 1fr; align-items: center; border-top: 1px solid var(--border); }
    .lane:last-of-type { border-bottom: 1px solid var(--border); }
    .lane-name { font-size: .85rem; padding: .3rem .5rem .3rem 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .lane-bars { width: 100%; display: block; }
    .lane-bars rect { stroke: var(--panel); stroke-width: 1; vector-effect: non-scaling-stroke; }
    .lane-bars rect.preparation, .lane-bars rect.release { fill-opacity: .55; stroke: var(--text); stroke-dasharray: 3 2; }
    .lane-bars a:hover rect, .lane-bars a:focus rect { opacity: .75; }
    .legend { display: flex; flex-wrap: wrap; gap: .3rem 1rem; color: var(--muted); font-size: .82rem; margin-top: .5rem; }
    .legend i { display: inline-block; width: .9rem; height: .6rem; border-radius: 2px; margin-right: .3rem; vertical-align: middle; }
    .legend i.success { background: var(--ok); } .legend i.failure { background: var(--fail); }
    .legend i.running { background: var(--run); } .legend i.interrupted { background: var(--off); }
    .legend i.bookend { background: var(--ok); opacity: .6; border: 1px dashed var(--text); }
    pre { background: var(--head); border: 1px solid var(--border); border-radius: 6px; padding: .6rem .8rem;
      overflow: auto; max-height: 24rem; font: .85rem/1.4 var(--mono); white-space: pre-wrap; word-break: break-word; margin: .3rem 0; }
    code { font-family: var(--mono); font-size: .9em; }
    form.filter { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .4rem 0 .6rem; }
    select, input[type=text], input[type=password] { font: inherit; padding: .35rem .5rem; border-radius: 6px;
      border: 1px solid var(--border); background: var(--panel); color: var(--text); }
    .signin { max-width: 26rem; margin: 3rem auto; }
    .signin label { display: block; margin: .7rem 0 .25rem; font-weight: 600; }
    .signin input { width: 100%; }
    .signin p.hint { color: var(--muted); font-size: .88rem; }
    .message { padding: .6rem .8rem; border-radius: 6px; border: 1px solid var(--fail); color: var(--fail); margin: .6rem 0; }
    .message.info { border-color: var(--run); color: var(--run); }
    .pager { display: flex; gap: 1rem; margin-top: .5rem; }
    @media (max-width: 640px) {
      main { padding: .6rem .6rem 2rem; }
      .lane { grid-template-columns: 6.5rem 1fr; }
      .timeline .axis { margin-left: 6.5rem; }
      dl.facts { grid-template-columns: 1fr; gap: 0; }
      dl.facts dd { margin-bottom: .4rem; }
      /* On a phone the task list keeps what identifies a task and how it ended. */
      .optional { display: none; }
    }
    """#

    static let script = #"""
    // Bookend dashboard: shows times in the browser's zone (UTC stays in the tooltip) and, while a
    // job runs, refreshes the parts of its page marked data-live-part from the page's live endpoint.
    // Every page works without this file.
    (function () {
      "use strict";

      function localTimes(root) {
        root.querySelectorAll("time[datetime]").forEach(function (element) {
          var iso = element.getAttribute("datetime");
          var date = new Date(iso);
          if (isNaN(date.getTime())) { return; }
          element.title = iso.replace("T", " ").replace("Z", " UTC");
          // Today's times without the date: tables of many times stay narrow.
          var today = new Date().toDateString() === date.toDateString();
          element.textContent = today ? date.toLocaleTimeString() : date.toLocaleString();
        });
      }

      function startLive(holder) {
        var url = holder.getAttribute("data-live-url");
        var last = {};
        function schedule(delay) { window.setTimeout(tick, delay); }
        function tick() {
          if (document.hidden) { schedule(1500); return; }
          var query = window.location.search;
          fetch(url + query, { credentials: "same-origin", headers: { "Accept": "application/json" } })
            .then(function (response) {
              // Signed out, or the job is gone: stop asking; the page keeps what it shows.
              if (response.status === 401 || response.status === 404) { return null; }
              if (!response.ok) { throw new Error("HTTP " + response.status); }
              return response.json();
            })
            .then(function (data) {
              if (data === null) { holder.setAttribute("data-live-state", "stopped"); return; }
              Object.keys(data.parts).forEach(function (name) {
                var element = document.querySelector('[data-live-part="' + name + '"]');
                if (element && last[name] !== data.parts[name]) {
                  last[name] = data.parts[name];
                  element.innerHTML = data.parts[name];
                  localTimes(element);
                }
              });
              holder.setAttribute("data-live-state", data.active ? "active" : "done");
              if (data.active) { schedule(1500); }
            })
            .catch(function () { schedule(5000); });
        }
        schedule(1500);
      }

      document.addEventListener("DOMContentLoaded", function () {
        localTimes(document);
        var holder = document.querySelector("[data-live-url]");
        if (holder) { startLive(holder); }
      });
    })();
    """#
}

"""The dashboard in a real browser, against a live daemon: both ways of signing in, the
JobPrepRelease sample's job page (per-node preparation/release table and timeline), a task whose
command line and output hold HTML, live updates, terminating a job from its page, and the refusals
(no session, no CSRF token). Screenshots of each page land in var/ui-screenshots/.

The tests run in file order and build on each other's state (one daemon, one signed-in browser).
"""
import subprocess
import urllib.error
import urllib.request

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import ACCOUNT, phone_screenshot, screenshot

POOL = "JobPrepReleaseSamplePool"
JOB = "JobPrepReleaseSampleJob"
SHARED = "$AZ_BATCH_NODE_SHARED_DIR/job_prep_and_release.txt"
HTML = "<b id=injected>bold</b><script>window.injected=1</script>"


# A click that navigates returns before the next page has always loaded (Selenium does not promise
# to wait for a form's POST and its redirect), so every check after one waits for its condition.
# While the page changes, an element found on the old page goes stale before its text is read (CI
# saw the sign-in page's h1 do so): that, like an element not there yet, means "look again".
def wait(driver, condition, timeout=60):
    return WebDriverWait(driver, timeout, poll_frequency=0.2,
                         ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)).until(condition)


def test_without_a_session_every_page_sends_to_sign_in(daemon, fresh_browser):
    fresh_browser.get(daemon["dashboard"] + "/jobs/anything")
    assert "/ui/sign-in" in fresh_browser.current_url
    assert fresh_browser.find_element(By.ID, "sign-in")
    screenshot(fresh_browser, "01-sign-in")


def test_sign_in_with_the_form(daemon, browser):
    browser.get(daemon["dashboard"])
    assert "/ui/sign-in" in browser.current_url
    # A wrong key is refused and says so.
    browser.find_element(By.ID, "account").clear()
    browser.find_element(By.ID, "account").send_keys(ACCOUNT)
    browser.find_element(By.ID, "key").send_keys("d3Jvbmcga2V5")
    browser.find_element(By.ID, "sign-in").click()
    wait(browser, lambda d: "not right" in d.find_element(By.CSS_SELECTOR, "[role=alert]").text, timeout=10)
    browser.find_element(By.ID, "account").clear()
    browser.find_element(By.ID, "account").send_keys(ACCOUNT)
    browser.find_element(By.ID, "key").send_keys(daemon["key"])
    browser.find_element(By.ID, "sign-in").click()
    wait(browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Overview")
    cookie = browser.get_cookie("bookend_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_sign_in_with_a_one_time_link(daemon, fresh_browser):
    link = subprocess.run(
        [daemon["binary"], "ui-link", "--endpoint", daemon["endpoint"], "--account", ACCOUNT, "--key-file", daemon["key_file"]],
        check=True, capture_output=True, text=True).stdout.strip()
    assert link.startswith(daemon["dashboard"] + "/link?")
    fresh_browser.get(link)
    wait(fresh_browser, lambda d: d.find_element(By.TAG_NAME, "h1").text == "Overview")
    # The same link a second time (another browser, no session) is refused.
    fresh_browser.delete_all_cookies()
    fresh_browser.get(link)
    assert "used already" in fresh_browser.find_element(By.CSS_SELECTOR, "[role=alert]").text
    # A link whose signature does not match is refused too.
    fresh_browser.get(link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB"))
    assert "not signed" in fresh_browser.find_element(By.CSS_SELECTOR, "[role=alert]").text


def test_run_the_job_prep_release_sample_through_the_api(batch):
    batch.call("POST", "/pools", {"id": POOL, "vmSize": "small", "targetDedicatedNodes": 2, "taskSlotsPerNode": 1})
    batch.wait(f"/pools/{POOL}/nodes", lambda page: len(page["value"]) == 2 and all(n["state"] == "idle" for n in page["value"]))
    batch.call("POST", "/jobs", {
        "id": JOB, "poolInfo": {"poolId": POOL},
        "jobPreparationTask": {"commandLine": f"/bin/sh -c 'echo \"$AZ_BATCH_NODE_ID tasks:\" | tee \"{SHARED}\"'"},
        "jobReleaseTask": {"commandLine": f"/bin/sh -c 'cat \"{SHARED}\"; rm \"{SHARED}\"'"},
    })
    tasks = [{"id": f"task{index:03d}", "commandLine": f"/bin/sh -c 'echo \"  $AZ_BATCH_TASK_ID\" >> \"{SHARED}\"; sleep 0.3'"}
             for index in range(1, 9)]
    # Text with HTML in it, in the command line and in stdout: the pages must show it as text.
    tasks.append({"id": "htmltask", "commandLine": f"/bin/sh -c 'echo \"{HTML}\"' # {HTML}"})
    batch.call("POST", f"/jobs/{JOB}/addtaskcollection", {"value": tasks})
    # Set once the tasks are in (a job with no tasks would complete at once): the job then ends by
    # itself and each node's release runs, as in the sample.
    batch.call("PATCH", f"/jobs/{JOB}", {"onAllTasksComplete": "terminatejob"})
    batch.wait(f"/jobs/{JOB}", lambda job: job["state"] == "completed")
    status = batch.wait(f"/jobs/{JOB}/jobpreparationandreleasetaskstatus", lambda page: page["value"] and all(
        (entry.get("jobReleaseTaskExecutionInfo") or {}).get("state") == "completed" for entry in page["value"]))
    assert all(entry["jobPreparationTaskExecutionInfo"]["exitCode"] == 0 for entry in status["value"])


def test_overview_and_pool_pages(daemon, browser):
    browser.get(daemon["dashboard"])
    assert browser.find_element(By.LINK_TEXT, POOL)
    assert browser.find_element(By.LINK_TEXT, JOB)
    screenshot(browser, "02-overview")
    browser.find_element(By.LINK_TEXT, POOL).click()
    wait(browser, lambda d: "/ui/pools/" in d.current_url, timeout=10)
    rows = browser.find_elements(By.CSS_SELECTOR, "table[aria-labelledby=nodes] tbody tr")
    assert len(rows) == 2
    screenshot(browser, "03-pool")


def test_job_page_shows_each_nodes_preparation_tasks_and_release(daemon, batch, browser):
    status = batch.call("GET", f"/jobs/{JOB}/jobpreparationandreleasetaskstatus")["value"]
    nodes = sorted(entry["nodeId"] for entry in status)
    browser.get(daemon["dashboard"] + "/jobs/" + JOB)
    assert browser.find_element(By.ID, "job-state").text == "completed"
    # The per-node table: one row per node that ran the preparation, each completed with exit code 0.
    rows = browser.find_elements(By.CSS_SELECTOR, "#prep-release-table tbody tr[data-node]")
    assert sorted(row.get_attribute("data-node") for row in rows) == nodes
    for row in rows:
        assert row.find_element(By.CSS_SELECTOR, "[data-field=prep-state]").text == "completed"
        assert row.find_element(By.CSS_SELECTOR, "[data-field=prep-exit]").text == "0"
        assert row.find_element(By.CSS_SELECTOR, "[data-field=release-state]").text == "completed"
        assert row.find_element(By.CSS_SELECTOR, "[data-field=release-exit]").text == "0"
    # The timeline: one lane per node; on each, the preparation bar ends before the first task bar
    # starts, and the release bar starts after the last task bar ends (times and x positions agree).
    lanes = browser.find_elements(By.CSS_SELECTOR, "#timeline .lane")
    assert sorted(lane.get_attribute("data-node") for lane in lanes) == nodes
    tasks_drawn = 0
    for lane in lanes:
        bars = [{"kind": bar.get_attribute("data-kind"), "start": int(bar.get_attribute("data-start")),
                 "end": int(bar.get_attribute("data-end")), "x": float(bar.get_attribute("x")),
                 "width": float(bar.get_attribute("width")), "outcome": bar.get_attribute("data-outcome")}
                for bar in lane.find_elements(By.CSS_SELECTOR, "rect[data-kind]")]
        preparation = [bar for bar in bars if bar["kind"] == "preparation"]
        release = [bar for bar in bars if bar["kind"] == "release"]
        tasks = [bar for bar in bars if bar["kind"] == "task"]
        assert len(preparation) == 1 and len(release) == 1, bars
        assert all(bar["outcome"] == "success" for bar in bars), bars
        tasks_drawn += len(tasks)
        if tasks:
            assert preparation[0]["end"] <= min(bar["start"] for bar in tasks)
            assert preparation[0]["x"] <= min(bar["x"] for bar in tasks)
            assert release[0]["start"] >= max(bar["end"] for bar in tasks)
            assert release[0]["x"] >= max(bar["x"] for bar in tasks)
        # Each bar has hover text with its times, and is a link.
        first = lane.find_element(By.CSS_SELECTOR, "rect[data-kind=preparation]")
        assert "Preparation" in first.find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert tasks_drawn == 9
    assert len(browser.find_elements(By.CSS_SELECTOR, "#task-table tbody tr[data-task]")) == 9
    # Times are <time datetime=UTC>, shown in the browser's zone with UTC in the title.
    stamp = browser.find_element(By.CSS_SELECTOR, "time[datetime]")
    assert stamp.get_attribute("title").endswith("UTC")
    screenshot(browser, "04-job")
    # The same page in dark mode and on a phone, for people to look at.
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    browser.refresh()
    assert browser.execute_script("return matchMedia('(prefers-color-scheme: dark)').matches")
    screenshot(browser, "04-job-dark")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 1600, "deviceScaleFactor": 1, "mobile": True})
    browser.refresh()
    phone_screenshot(browser, "04-job-phone")
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.refresh()
    # The preparation's stdout, through the dashboard's file link.
    browser.find_element(By.CSS_SELECTOR, "#prep-release-table a.stdout").click()
    # The job page shows the preparation's command line, which holds "tasks:" too: wait for the file.
    wait(browser, lambda d: d.current_url.endswith("/stdout.txt"), timeout=10)
    assert "tasks:" in browser.find_element(By.TAG_NAME, "body").text


def test_html_in_a_command_line_and_stdout_is_shown_as_text(daemon, browser):
    browser.get(daemon["dashboard"] + f"/jobs/{JOB}")
    cell = browser.find_element(By.CSS_SELECTOR, "#task-table tr[data-task=htmltask] code.command")
    assert HTML in cell.text
    browser.get(daemon["dashboard"] + f"/jobs/{JOB}/tasks/htmltask")
    assert HTML in browser.find_element(By.ID, "command-line").text
    assert HTML in browser.find_element(By.ID, "stdout-tail").text
    assert browser.find_elements(By.ID, "injected") == []
    assert browser.execute_script("return window.injected === undefined")
    assert browser.find_elements(By.CSS_SELECTOR, "main script") == []
    screenshot(browser, "05-task")
    browser.find_element(By.ID, "stdout-file").click()
    # The task page shows the same text in its command line: wait for the file itself.
    wait(browser, lambda d: d.current_url.endswith("/stdout.txt"), timeout=10)
    assert HTML in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_elements(By.ID, "injected") == []


def test_why_waiting_page(daemon, browser):
    browser.get(daemon["dashboard"] + f"/jobs/{JOB}/why")
    assert browser.find_element(By.ID, "why-state").text == "notwaiting"
    screenshot(browser, "06-why-waiting")


def test_live_updates_and_terminating_a_job_from_its_page(daemon, batch, browser):
    job = "LiveJob"
    batch.call("POST", "/jobs", {"id": job, "poolInfo": {"poolId": POOL}})
    batch.call("POST", f"/jobs/{job}/tasks", {"id": "sleeper", "commandLine": "/bin/sh -c 'sleep 120'"})
    batch.wait(f"/jobs/{job}/tasks/sleeper", lambda task: task["state"] == "running")
    browser.get(daemon["dashboard"] + f"/jobs/{job}")
    holder = browser.find_element(By.ID, "job")
    assert holder.get_attribute("data-live-url")
    browser.execute_script("window.bookendMarker = 42")
    # A task added through the API appears on the open page without a reload.
    batch.call("POST", f"/jobs/{job}/tasks", {"id": "quick", "commandLine": "/bin/sh -c 'echo quick'"})
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#task-table tr[data-task=quick]"))
    assert browser.execute_script("return window.bookendMarker") == 42
    screenshot(browser, "07-job-running")
    browser.find_element(By.ID, "action-terminate").click()
    wait(browser, lambda d: "/confirm/terminate" in d.current_url, timeout=10)
    screenshot(browser, "08-confirm-terminate")
    browser.find_element(By.ID, "confirm").click()
    batch.wait(f"/jobs/{job}", lambda answer: answer["state"] == "completed")
    browser.get(daemon["dashboard"] + f"/jobs/{job}")
    assert browser.find_element(By.ID, "job-state").text == "completed"
    assert browser.find_element(By.ID, "terminate-reason").text == "UserTerminate"
    assert batch.call("GET", f"/jobs/{job}")["executionInfo"]["terminateReason"] == "UserTerminate"


def test_a_post_without_the_csrf_token_is_refused(daemon, batch, browser):
    job = "ForgedJob"
    batch.call("POST", "/jobs", {"id": job, "poolInfo": {"poolId": POOL}})
    browser.get(daemon["dashboard"] + f"/jobs/{job}")
    # From the signed-in browser itself (its cookie goes along), but without the form's token.
    status = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {method: 'POST', credentials: 'same-origin', headers: {'Content-Type': 'application/x-www-form-urlencoded'},"
        " body: 'csrf=forged'}).then(r => done(r.status), () => done(-1));",
        f"/ui/jobs/{job}/actions/terminate")
    assert status == 403
    # And from outside any browser, with no session at all.
    request = urllib.request.Request(daemon["dashboard"] + f"/jobs/{job}/actions/terminate", data=b"csrf=x", method="POST")
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("the forged POST was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 403
    assert batch.call("GET", f"/jobs/{job}")["state"] == "active"


def test_a_failed_preparation_is_red_on_the_timeline_and_explained(daemon, batch, browser):
    job = "BrokenPrepJob"
    batch.call("POST", "/jobs", {"id": job, "poolInfo": {"poolId": POOL},
                                 "jobPreparationTask": {"commandLine": "/bin/sh -c 'echo \"<boom>\" >&2; exit 3'"}})
    batch.call("POST", f"/jobs/{job}/tasks", {"id": "never", "commandLine": "/bin/true"})
    batch.wait(f"/jobs/{job}/jobpreparationandreleasetaskstatus", lambda page: len(page["value"]) == 2 and all(
        entry["jobPreparationTaskExecutionInfo"].get("result") == "failure" for entry in page["value"]))
    browser.get(daemon["dashboard"] + f"/jobs/{job}")
    bars = browser.find_elements(By.CSS_SELECTOR, "#timeline rect[data-kind=preparation]")
    assert len(bars) == 2 and all(bar.get_attribute("data-outcome") == "failure" for bar in bars)
    exits = [cell.get_attribute("textContent") for cell in browser.find_elements(By.CSS_SELECTOR, "[data-field=prep-exit]")]
    assert exits == ["3", "3"], exits
    results = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "[data-field=prep-result]")]
    assert results == ["failure", "failure"], results
    screenshot(browser, "09-job-failed-preparation")
    browser.get(daemon["dashboard"] + f"/jobs/{job}/why")
    assert browser.find_element(By.ID, "why-state").text == "blocked"
    assert browser.find_element(By.ID, "why-code").text == "JobPreparationTaskFailed"
    assert "<boom>" in browser.find_element(By.CSS_SELECTOR, "table[aria-labelledby=failed-prep]").text
    screenshot(browser, "10-why-blocked")


def test_sign_out_ends_the_session(daemon, browser):
    browser.get(daemon["dashboard"])
    browser.find_element(By.ID, "sign-out").click()
    wait(browser, lambda d: "/ui/sign-in" in d.current_url, timeout=10)
    browser.get(daemon["dashboard"] + f"/jobs/{JOB}")
    assert "/ui/sign-in" in browser.current_url

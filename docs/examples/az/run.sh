#!/bin/sh
# The JobPrepRelease scenario with the Azure CLI against a running `bookend serve`.
# Needs: AZURE_BATCH_ACCOUNT, AZURE_BATCH_ACCESS_KEY, AZURE_BATCH_ENDPOINT (see README.md), and `az`
# on PATH (or AZ=/path/to/az). Run from the repository root.
set -eu
AZ=${AZ:-az}
HERE=docs/examples/az
STATUS="[].{node:nodeId, prep:jobPreparationTaskExecutionInfo.state, prepExit:jobPreparationTaskExecutionInfo.exitCode, release:jobReleaseTaskExecutionInfo.state, releaseExit:jobReleaseTaskExecutionInfo.exitCode}"

$AZ batch pool create --json-file $HERE/pool.json
$AZ batch job create --json-file $HERE/job.json
$AZ batch task create --job-id azjob --json-file $HERE/tasks.json -o table

# Wait until the four tasks have completed.
while [ "$($AZ batch job task-counts show --job-id azjob --query taskCounts.completed -o tsv)" != 4 ]; do sleep 1; done
$AZ batch task list --job-id azjob --query "[].{task:id, state:state, exitCode:executionInfo.exitCode, node:nodeInfo.nodeId}" -o table
OUT=$(mktemp -d)
$AZ batch task file download --job-id azjob --task-id task1 --file-path stdout.txt --destination "$OUT/task1-stdout.txt"
cat "$OUT/task1-stdout.txt" && rm -r "$OUT"
$AZ batch job prep-release-status list --job-id azjob --query "$STATUS" -o table

# Stop (terminate) the job: the release task runs once on each node that ran the preparation task.
$AZ batch job stop --job-id azjob --terminate-reason "done with az"
while [ "$($AZ batch job show --job-id azjob --query state -o tsv)" != completed ]; do sleep 1; done
$AZ batch job prep-release-status list --job-id azjob --query "$STATUS" -o table

$AZ batch job delete --job-id azjob --yes
$AZ batch pool delete --pool-id azpool --yes

#!/usr/bin/env bash
# The archiver quickstart: capture two example texts into a new archive,
# sign them, verify everything, and read one back. Needs only `archiver` on
# PATH (pip install .). Works in a temporary folder and a temporary key
# directory, so it touches nothing of yours.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/archiver-quickstart.XXXXXX")"
export ARCHIVER_KEY_DIR="$work/keys"   # private keys for this demo only
export ARCHIVER_ARCHIVE="$work/evidence"

echo "== archiver init"
archiver init "$ARCHIVER_ARCHIVE"
echo "== archiver keys generate alice --role archivist"
archiver keys generate alice --role archivist
echo "== archiver ingest (a folder, with a sidecar NAME.meta.json)"
archiver ingest "$here/texts" --publisher "archiver example"
echo "== archiver list"
archiver list
echo "== archiver verify"
archiver verify
doc="$(archiver list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["document"])')"
echo "== archiver cat ${doc:0:8} (the exact bytes, checked against the signed digest)"
archiver cat "${doc:0:8}" > "$work/copy.txt"
head -3 "$work/copy.txt"
echo
echo "archive left in $ARCHIVER_ARCHIVE (keys in $ARCHIVER_KEY_DIR)"

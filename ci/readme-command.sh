#!/usr/bin/env bash
# Run one of the README's two set-up commands, read from the README itself so that what CI runs
# and what users copy can never drift apart.  Usage: bash ci/readme-command.sh test|demo
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:?usage: readme-command.sh test|demo}"
cmd=$(awk -v tag="<!-- $which-command -->" '
  $0 == tag {grab = 1; next}
  grab && /^```/ {if (inside) exit; inside = 1; next}
  grab && inside {print}
' README.md)
if [ -z "$cmd" ]; then
  echo "README.md has no '<!-- $which-command -->' block" >&2
  exit 2
fi
echo "+ $cmd"
bash -euo pipefail -c "$cmd"

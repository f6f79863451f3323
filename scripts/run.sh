#!/usr/bin/env bash
# Set up, index the bundled seeds (first start only) and start the chat UI on http://127.0.0.1:7860
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/assistant serve "$@"

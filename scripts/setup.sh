#!/usr/bin/env bash
# Set up a virtual environment in .venv with the pinned requirements.
#   scripts/setup.sh          runtime only (the dashboard and the CLI)
#   scripts/setup.sh --dev    plus test and cluster tools, and Debian's chromium and postgresql for the tests
#                             (installed with apt-get when run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=requirements.txt
[ "${1:-}" = "--dev" ] && requirements=requirements-dev.txt
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r "$requirements"
# The second runtime (the onnxruntime implementation) and torch.onnx.export's dependencies must import: say so
# now rather than at the first export.
.venv/bin/python -c "import onnxruntime, onnx, onnxscript" || { echo "setup: onnxruntime/onnx/onnxscript do not import" >&2; exit 1; }
# The package itself, editable (its dependencies are the requirements above): the `efficiency` command, and
# benchmarks and scripts import it from anywhere without PYTHONPATH.
.venv/bin/python -m pip install --quiet --no-deps -e .
if [ "${1:-}" = "--dev" ]; then
  # Debian's chromium drives the browser test; postgresql backs the shared-store test (it starts its own
  # throwaway server on loopback). Without them those tests skip and say why.
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "installing Debian packages for the tests: ${missing[*]}" >&2
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "note: missing ${missing[*]} (apt-get install ${missing[*]}); their tests will be skipped" >&2
    fi
  fi
fi

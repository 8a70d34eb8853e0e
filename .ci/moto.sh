#!/usr/bin/env bash
# Runs the command given as arguments against moto's S3 server: installs
# moto[server] into target/moto-venv (reused while it holds that version),
# starts it on a free port of 127.0.0.1, waits until it answers, runs the
# command with the S3 environment, and stops the server by its PID on every
# exit path.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION=5.2.5
VENV=target/moto-venv
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION')" 2>/dev/null; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION"
fi

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
LOG=target/moto-server.log
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM

# Bounded wait: 30 s.
for _ in $(seq 1 150); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/', timeout=1)" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$MOTO_PID" 2>/dev/null; then
    echo "moto_server exited before answering; its log:" >&2
    cat "$LOG" >&2
    exit 1
  fi
  sleep 0.2
done
if ! python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/', timeout=1)" 2>/dev/null; then
  echo "moto_server did not answer on 127.0.0.1:$PORT within 30 s; its log:" >&2
  cat "$LOG" >&2
  exit 1
fi
echo "moto $MOTO_VERSION on 127.0.0.1:$PORT (pid $MOTO_PID)"

AWS_ENDPOINT="http://127.0.0.1:$PORT" AWS_ALLOW_HTTP=true \
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 CI=true \
  "$@"

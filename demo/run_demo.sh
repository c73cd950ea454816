#!/usr/bin/env bash
# `make demo`: the Amharic TTS demo training in the background while
# TensorBoard serves its logs, so the TTS Monitor tab fills live. TensorBoard
# keeps running after training ends, until Ctrl-C. Extra arguments go to
# demo/train.py (e.g. `bash demo/run_demo.sh --steps 600`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
LOGDIR=${LOGDIR:-demo/logs}
PORT=${PORT:-6006}
TENSORBOARD="$(dirname "$PY")/tensorboard"
mkdir -p "$LOGDIR"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PY" demo/train.py --logdir "$LOGDIR" "$@" &
pids+=($!)
train=$!
"$TENSORBOARD" --logdir "$LOGDIR" --host 127.0.0.1 --port "$PORT" 2>"$LOGDIR/tensorboard.log" &
pids+=($!)
tensorboard=$!

sleep 3
if ! kill -0 "$tensorboard" 2>/dev/null; then
  echo "TensorBoard did not start (port $PORT in use? try PORT=6007 make demo); see $LOGDIR/tensorboard.log" >&2
  exit 1
fi
echo
echo "TensorBoard: http://127.0.0.1:$PORT/#ttsmon   (the tab fills while the demo trains)"
echo

if wait "$train"; then
  echo
  echo "Training done. TensorBoard keeps serving http://127.0.0.1:$PORT/#ttsmon; Ctrl-C to stop."
else
  echo "demo/train.py failed; TensorBoard keeps serving what it logged. Ctrl-C to stop." >&2
fi
wait "$tensorboard"

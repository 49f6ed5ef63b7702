#!/bin/bash
# What launch/tpu_pod.py runs on each worker of a TPU VM slice (gcloud ... ssh --worker=all); it
# works on any Linux host, which is how tests/test_launch.py runs it.
#
#   bash launch/tpu_worker.sh setup [gs://DATA]                    # Python >= 3.11 venv, install,
#                                                                  # DATA copied to ~/rocketqa-data
#   bash launch/tpu_worker.sh start CONFIG WORKDIR [--config.x=y]  # the pipeline, in the background
#   bash launch/tpu_worker.sh status                               # running / finished, the stage
#   bash launch/tpu_worker.sh logs [LINES]                         # the end of this worker's log
#
# The job outlives the ssh session that started it (setsid, nohup). Its log is $STATE/log on the
# worker and, every 5 minutes and at the end, <workdir>/logs/<hostname>.log (gs:// or a shared
# folder), so the logs of a preempted or deleted slice survive it. A rerun after preemption
# resumes from the workdir (the pipeline's stage records and checkpoints).
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${ROCKETQA_STATE:-$HOME/rocketqa}  # The log, the job's pid and its exit code.
VENV=${ROCKETQA_VENV:-$HOME/rocketqa-venv}
PYTHON=${PYTHON:-$VENV/bin/python}
# TPU VM images ship Python 3.10 (Ubuntu 22.04); the requirements need 3.11, jax 0.11+ 3.12.
PYTHON_VERSION=${ROCKETQA_PYTHON_VERSION:-3.12}
JAX_EXTRA=${ROCKETQA_JAX_EXTRA:-tpu}
LOG_EVERY=${ROCKETQA_LOG_EVERY:-300}
DATA_DIR=${ROCKETQA_DATA_DIR:-$HOME/rocketqa-data}

running() { [[ -f "$STATE/pid" ]] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }

case "${1:-}" in
  setup)
    if [[ ! -x "$PYTHON" ]]; then  # uv fetches a standalone CPython of the version asked for.
      python3 -m pip install -q --user uv
      "$HOME/.local/bin/uv" venv --seed --python "$PYTHON_VERSION" "$VENV"
    fi
    "$PYTHON" launch/install.py --jax="$JAX_EXTRA"
    if [[ -n "${2:-}" ]]; then  # Read by position at every step: a local copy on each worker.
      mkdir -p "$DATA_DIR"
      gcloud storage rsync --recursive "$2" "$DATA_DIR"
    fi
    ;;
  start)
    [[ $# -ge 3 ]] || { echo "usage: $0 start CONFIG WORKDIR [--config.x=y ...]" >&2; exit 2; }
    if running; then
      echo "$(hostname): already running (pid $(cat "$STATE/pid"))"
      exit 0
    fi
    mkdir -p "$STATE"
    rm -f "$STATE/exit"
    # One process per worker; ROCKETQA_DISTRIBUTED=1 lets jax.distributed find the slice's
    # coordinator and this worker's process id (rocketqa_jax/distributed.py).
    ROCKETQA_DISTRIBUTED=${ROCKETQA_DISTRIBUTED:-1} setsid nohup bash -c '
      python=$1 state=$2 every=$3 config=$4 workdir=$5; shift 5
      save_log() {
        "$python" -c "import pathlib, socket, sys; from rocketqa_jax.workdir import Workdir
log = Workdir(sys.argv[2]).log(socket.gethostname()); log.parent.mkdir(parents=True, exist_ok=True)
log.write_bytes(pathlib.Path(sys.argv[1]).read_bytes())" "$state/log" "$workdir" || true
      }
      (while sleep "$every"; do save_log; done) &
      saver=$!
      echo "$(date -u +%FT%TZ) start: $python -m rocketqa_jax.main --config=$config --workdir=$workdir $*" >> "$state/log"
      "$python" -m rocketqa_jax.main --config="$config" --workdir="$workdir" "$@" >> "$state/log" 2>&1 && code=0 || code=$?
      echo "$(date -u +%FT%TZ) exit $code" >> "$state/log"
      kill "$saver" 2>/dev/null || true
      save_log
      echo "$code" > "$state/exit"
    ' rocketqa "$PYTHON" "$STATE" "$LOG_EVERY" "$2" "$3" "${@:4}" < /dev/null > /dev/null 2>&1 &
    echo $! > "$STATE/pid"
    echo "$(hostname): started (pid $!), log $STATE/log"
    ;;
  status)
    # The stage from main's log lines ("stage NAME", "NAME: ... is complete, skipping").
    stage=$(grep -oE '(stage [a-z0-9_]+$|[a-z0-9_]+: .* is complete, skipping)' "$STATE/log" \
            2>/dev/null | tail -n 1 | sed -E 's/^stage //; s/: .*//' || true)
    if running; then
      echo "$(hostname): running, stage ${stage:-starting}"
    elif [[ -f "$STATE/exit" ]]; then
      echo "$(hostname): finished, exit $(cat "$STATE/exit"), last stage ${stage:-none}"
    elif [[ -f "$STATE/pid" ]]; then
      echo "$(hostname): stopped without an exit code (killed or preempted), stage ${stage:-none}"
    else
      echo "$(hostname): not started"
    fi
    ;;
  logs)
    tail -n "${2:-40}" "$STATE/log"
    ;;
  *)
    echo "usage: $0 setup [gs://DATA] | start CONFIG WORKDIR [--config.x=y ...] | status | logs [LINES]" >&2
    exit 2
    ;;
esac

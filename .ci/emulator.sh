# shellcheck shell=bash
# Start and stop the Cloud Spanner emulator for a CI run; sourced by .ci/run.
#
# gateway_main starts emulator_main as its child and does not end it when it is itself
# terminated, so ending the gateway's pid alone leaves the emulator running. The gateway is
# started with job control on, which puts it in a process group of its own (pgid = its pid);
# stopping signals that group, i.e. exactly the processes this run started, and nothing that
# merely has a similar command line (another run's emulator, a developer's own).

SPANNER_EMULATOR_PID=""

# start_spanner_emulator BINARY [GRPC_PORT] [HTTP_PORT] [LOG]: start it, wait up to 30 s for
# the gRPC port, export SPANNER_EMULATOR_HOST. Returns 1 (emulator stopped) when it never answers.
start_spanner_emulator() {
  local bin="$1" grpc_port="${2:-9010}" http_port="${3:-9020}" log="${4:-/tmp/spanner-emulator.log}"
  set -m
  "$bin" --hostname localhost --grpc_port "$grpc_port" --http_port "$http_port" >"$log" 2>&1 &
  SPANNER_EMULATOR_PID=$!
  set +m
  local _
  for _ in $(seq 1 60); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$grpc_port") 2>/dev/null; then
      export SPANNER_EMULATOR_HOST="localhost:$grpc_port"
      return 0
    fi
    sleep 0.5
  done
  stop_spanner_emulator
  return 1
}

# stop_spanner_emulator: TERM the emulator's process group, KILL it after 5 s if still there.
stop_spanner_emulator() {
  local pgid="$SPANNER_EMULATOR_PID" _
  [ -n "$pgid" ] || return 0
  SPANNER_EMULATOR_PID=""
  kill -TERM -- "-$pgid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 -- "-$pgid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pgid" 2>/dev/null || true
  wait "$pgid" 2>/dev/null || true
}

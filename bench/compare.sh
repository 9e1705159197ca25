#!/usr/bin/env bash
# Side-by-side proxy benchmark on loopback, one worker each: nginx, nginx + lua, bare Pingora and
# wasmgate (no plugins; one no-op plugin; key-auth + rate-limiting; five plugins; gray-release in Rust and in Go;
# jwt HS256 and RS256; cors; each transformer),
# against one fixed nginx backend.
#
#   make bench-compare                      the main table
#   bench/compare.sh --scenarios            also 10,000 routes, 1,000 consumers, hot replace
#   bench/compare.sh --edge                 also HTTPS keep-alive, TLS handshakes per second (new
#                                           and resumed), HTTP/2 (h2load) and gRPC unary calls, and
#                                           a client sending a looping input every 100 ms
#   ROUNDS=3 DURATION=10 CONNS=50 bench/compare.sh
#   bench/compare.sh --instructions         instructions per request instead (valgrind), below
#   bench/compare.sh --guest                the same, and the plugins' own functions by instructions
#   BASELINE=/path/to/other/wasmgate bench/compare.sh    also that build, no plugins (an A/B)
#   BASELINE_PLUGINS=1 BASELINE=...         and that build with the five plugins too (when it
#                                           loads this build's modules)
#
# Targets are interleaved over ROUNDS rounds and each figure is the median. Each proxy runs only
# during its own measurement. With two or more cores the proxy under test is pinned to the last
# core and wrk and the backend to the others, so that the client never competes with it; then each
# target is measured again unpinned, everything sharing every core, as users run it (the
# "unpinned" columns; PINNED_ONLY=1 skips them).
# Results: stdout and target/bench-compare.md. Compare rows of one run, never across runs.
#
# --instructions counts the instructions each target runs per request (valgrind's callgrind,
# over N2 - N1 requests of one keep-alive client: default 1,200 - 200), which gives the same
# figure on every run, whatever else the machine does: an A/B of a change on the request path
# that req/s on a noisy VM cannot resolve. wasmgate runs as built with `--features valgrind`
# (a smaller instance pool, which valgrind can map), and so must a BASELINE build. The profiles
# stay in target/instructions (callgrind_annotate). Instructions are not time: memory stalls,
# system calls and the kernel's share do not show, so confirm with a req/s run.
# --guest also names the plugins' compiled code: the plugins are built keeping their function names
# (CARGO_PROFILE_PLUGIN_STRIP=debuginfo, so target/plugins then holds these larger builds until
# the next `make plugins`), the gateway writes wasmtime's perf map (WASMGATE_PERFMAP=1), and
# target/instructions/NAME.guest.txt lists each target's top plugin functions per request.
set -euo pipefail
cd "$(dirname "$0")/.."

scenarios=0
edge=0
instructions=0
guest=0
for arg in "$@"; do
  case "$arg" in
    --scenarios) scenarios=1 ;;
    --edge) edge=1 ;;
    --instructions) instructions=1 ;;
    --guest) instructions=1 guest=1 ;;
    *) echo "usage: bench/compare.sh [--scenarios] [--edge] [--instructions | --guest]" >&2; exit 2 ;;
  esac
done
rounds="${ROUNDS:-3}"
duration="${DURATION:-10}"
conns="${CONNS:-50}"
n1="${N1:-200}"   # --instructions: requests in the shorter and the longer run
n2="${N2:-1200}"

# --- prerequisites -------------------------------------------------------------------------------
need=()
command -v nginx >/dev/null || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || need+=(libnginx-mod-http-lua)
command -v wrk >/dev/null || need+=(wrk)
command -v taskset >/dev/null || need+=(util-linux)
[ "$edge" = 0 ] || command -v h2load >/dev/null || need+=(nghttp2-client)
[ "$instructions" = 0 ] || command -v valgrind >/dev/null || need+=(valgrind)
if [ "${#need[@]}" -gt 0 ]; then
  echo "bench-compare: installing ${need[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
perfmap=()
if [ "$guest" = 1 ]; then
  export CARGO_PROFILE_PLUGIN_STRIP=debuginfo
  perfmap=(env WASMGATE_PERFMAP=1)
fi
scripts/build-plugins.sh >/dev/null
bin="$(mkdir -p "${CARGO_TARGET_DIR:-target}" && cd "${CARGO_TARGET_DIR:-target}" && pwd)/release"
if [ "$instructions" = 1 ]; then
  # Cargo keeps both builds of the crate: going back and forth only links.
  cargo build --quiet --release -p wasmgate --bin wasmgate --features valgrind
  cp "$bin/wasmgate" "$bin/wasmgate-valgrind"
fi
cargo build --quiet --release -p wasmgate --bin wasmgate -p wasmgate-bench --bins

work=$(mktemp -d /tmp/wasmgate-compare.XXXXXX)
# The compiled modules. Under valgrind the CPU's features read differently, so the valgrind
# build compiles its own once, slowly, and keeps them for the next --instructions run.
cache="$work/cache"
[ "$instructions" = 0 ] || cache="$(mkdir -p "${CARGO_TARGET_DIR:-target}/instructions-cache" && cd "$_" && pwd)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Cores: the proxy under test gets the last one, everything else the rest.
cores=$(nproc)
if [ "$cores" -ge 2 ]; then
  proxy_cpu="taskset -c $((cores - 1))"
  client_cpu="taskset -c 0-$((cores - 2))"
else
  proxy_cpu=""; client_cpu=""
fi

BACKEND=127.0.0.1:19201
PORT=19202
TLS_PORT=19203
GRPC_BACKEND=127.0.0.1:19204
clk_tck=$(getconf CLK_TCK)

# --- the fixed backend ---------------------------------------------------------------------------
nginx_conf() { # dir, server block
  mkdir -p "$1/logs"
  cat > "$1/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
master_process off;
worker_processes 1;
error_log $1/logs/error.log error;
pid $1/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream backend { server $BACKEND; keepalive 128; keepalive_requests 1000000; }
  lua_shared_dict keys 10m;
  lua_shared_dict counters 10m;
  $2
}
CONF
}

nginx_conf "$work/backend" "server { listen $BACKEND reuseport; location / { default_type text/plain; return 200 'hello from the backend\n'; } }"
$client_cpu nginx -p "$work/backend" -c nginx.conf &
backend_pid=$!
pids+=($!)

# Users do not pin: each target is also measured with the proxy, wrk and the backend sharing
# every core (rows "u-NAME"). PINNED_ONLY=1 skips that second pass.
pinning() { # pinned | unpinned
  local all="0-$((cores - 1))" client="0-$((cores - 2))"
  case "$1" in
    unpinned) proxy_cpu=""; client_cpu=""; taskset -a -p -c "$all" "$backend_pid" >/dev/null ;;
    pinned) proxy_cpu="taskset -c $((cores - 1))"; client_cpu="taskset -c $client"
      taskset -a -p -c "$client" "$backend_pid" >/dev/null ;;
  esac
}
modes=(pinned)
[ "$cores" -lt 2 ] || [ "${PINNED_ONLY:-0}" = 1 ] || modes+=(unpinned)

# --- the targets ---------------------------------------------------------------------------------
proxy_pass='proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";'
# With --edge every proxy also terminates TLS on $TLS_PORT (h2 through ALPN), with one ECDSA
# P-256 certificate and each one's default (Mozilla intermediate) ciphers.
listen="\"127.0.0.1:$PORT\""
nginx_tls=""
bare_tls=""
if [ "$edge" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
    -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
  listen="[\"127.0.0.1:$PORT\", \"127.0.0.1:$TLS_PORT ssl http2\"]"
  nginx_tls="listen 127.0.0.1:$TLS_PORT ssl http2; ssl_certificate $work/tls.crt; ssl_certificate_key $work/tls.key;
    ssl_session_tickets on; ssl_session_cache shared:tls:10m;"
  bare_tls="127.0.0.1:$TLS_PORT $work/tls.crt $work/tls.key"
fi
nginx_conf "$work/nginx" "server { listen 127.0.0.1:$PORT; $nginx_tls location / { $proxy_pass } }"

# key-auth from a shared dict (1,000 consumers plus bench-key) and a per-consumer counter in a
# one-second window, with the rate-limit headers: what key-auth + rate-limiting do.
nginx_conf "$work/nginx-lua" "
  init_by_lua_block {
    local keys = ngx.shared.keys
    keys:set('bench-key', 'bench')
    for i = 1, 1000 do keys:set('key-' .. i, 'consumer-' .. i) end
  }
  server { listen 127.0.0.1:$PORT; location / {
    access_by_lua_block {
      local key = ngx.var.http_apikey
      local consumer = key and ngx.shared.keys:get(key)
      if not consumer then
        ngx.status = 401
        ngx.header['WWW-Authenticate'] = 'Key realm=\"wasmgate\"'
        ngx.say('{\"message\":\"Unauthorized\"}')
        return ngx.exit(401)
      end
      local limit = 1000000000
      local n = ngx.shared.counters:incr(consumer .. ':' .. math.floor(ngx.now()), 1, 0, 2)
      if n > limit then return ngx.exit(429) end
      ngx.req.set_header('X-Consumer-Username', consumer)
      ngx.ctx.remaining = limit - n
    }
    header_filter_by_lua_block {
      ngx.header['X-RateLimit-Limit-Second'] = 1000000000
      ngx.header['X-RateLimit-Remaining-Second'] = ngx.ctx.remaining
    }
    $proxy_pass
  } }"

mkdir -p "$work/plugins"
for p in key-auth rate-limiting acl correlation-id gray-release jwt cors request-transformer response-transformer; do
  cp "target/plugins/$p.wasm" "$work/plugins/"
done
mkdir -p "$work/go-plugins"
cp target/plugins/gray-release-go.wasm "$work/go-plugins/"
mkdir -p "$work/noop-plugins"
cp target/test-plugins/noop.wasm "$work/noop-plugins/"
cp target/test-plugins/stamp.wasm "$work/plugins/stamp.wasm"

# Every module compiled into the cache before any target runs, by each build measured: a gateway
# serves while its modules compile in the background (503 on routes that use one), which would
# otherwise measure the first targets' answers while a compiling child shares the proxy's core.
# `plugin compile` is the hidden command that the gateway's compiling children run; a baseline
# build without it compiles at start and answers once ready (`wait_ready`).
precompile() { # wasmgate binary
  local f
  "$1" plugin compile --help >/dev/null 2>&1 || return 0
  mkdir -p "$cache"
  for f in "$work"/plugins/*.wasm "$work"/go-plugins/*.wasm "$work"/noop-plugins/*.wasm; do
    "$1" plugin compile --hash "$(sha256sum <"$f" | cut -d' ' -f1)" --cache-dir "$cache" <"$f" ||
      echo "bench-compare: $1 could not compile $f" >&2
  done
}
if [ "$instructions" = 0 ]; then
  precompile "$bin/wasmgate"
  [ -z "${BASELINE:-}" ] || precompile "$BASELINE"
fi

gateway_toml() { # extra TOML appended to the base[, extra [server] lines]
  cat <<TOML
[server]
${2:-}
proxy_listen = $listen
$([ "$edge" = 0 ] || printf 'ssl_cert = "%s"\nssl_cert_key = "%s"' "$work/tls.crt" "$work/tls.key")
admin_listen = "127.0.0.1:0"
worker_threads = 1
access_log = "off"
log_level = "warn"
plugins_file = "plugins.toml"
[[upstreams]]
name = "canary"
[[upstreams.targets]]
target = "$BACKEND"
[[services]]
name = "bench"
url = "http://$BACKEND"
[[services.routes]]
name = "r"
paths = ["/"]
[[consumers]]
username = "bench"
[[consumers.keyauth_credentials]]
key = "bench-key"
[[consumers.acls]]
group = "bench"
$1
TOML
}

plugins_toml() { # [[plugins]] entries
  printf 'plugins_dir = "plugins"\ncache_dir = "%s"\n%s\n' "$cache" "$1"
}

# The plugin setups, shared with the criterion benchmarks (bench/benches/plugin_call.rs).
KEY_AUTH_RL=$(cat bench/plugins/key-auth-rate-limiting.toml)
FIVE="$KEY_AUTH_RL
$(cat bench/plugins/acl-correlation-id-gray-release.toml)"

# A wasmgate target: its directory with gateway.toml and plugins.toml.
wasmgate_dir() { # name, gateway extra, plugins[, plugins directory[, [server] lines]]
  local d="$work/$1"
  mkdir -p "$d"
  ln -sfn "${4:-$work/plugins}" "$d/plugins"
  gateway_toml "$2" "${5:-}" > "$d/gateway.toml"
  plugins_toml "$3" > "$d/plugins.toml"
}
# gray-release alone, and its Go port with the same configuration.
GRAY='[[plugins]]
name = "gray-release"
route = "r"
config = { canary_upstream = "canary", headers = ["x-canary=yes"], percentage = 10 }'
wasmgate_dir none "" ""
wasmgate_dir keyauth-rl "" "$KEY_AUTH_RL"
wasmgate_dir five "" "$FIVE"
wasmgate_dir gray-rust "" "$GRAY"
wasmgate_dir gray-go "" "${GRAY/gray-release/gray-release-go}" "$work/go-plugins"
# A plugin whose access phase does nothing: what any plugin costs a request on the host side.
wasmgate_dir noop "" "$(printf '[[plugins]]\nname = "noop"\nroute = "r"\n')" "$work/noop-plugins"
# jwt with an HS256 and an RS256 credential of consumer "bench", tokens made here (openssl), and
# wrk scripts that send them; cors with an allowed origin; each transformer with three header
# operations.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
jwt_token() { # alg, iss, signing command (reads the input on stdin, writes the raw signature)
  local input
  input="$(printf '{"alg":"%s","typ":"JWT"}' "$1" | b64url).$(printf '{"iss":"%s","exp":%d}' "$2" $(($(date +%s) + 86400)) | b64url)"
  printf '%s.%s' "$input" "$(printf '%s' "$input" | $3 | b64url)"
}
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/jwt.key" 2>/dev/null
openssl pkey -in "$work/jwt.key" -pubout -out "$work/jwt.pub"
JWT_CREDENTIALS="[[consumers.jwt_secrets]]
key = \"bench-hs\"
secret = \"bench-secret\"
[[consumers.jwt_secrets]]
key = \"bench-rs\"
algorithm = \"RS256\"
rsa_public_key = '''
$(cat "$work/jwt.pub")'''"
wrk_headers() { # script file, header lines as name: value
  local f="$1"; shift
  { for h in "$@"; do printf 'wrk.headers["%s"] = "%s"\n' "${h%%: *}" "${h#*: }"; done; } > "$f"
}
wrk_headers "$work/jwt-hs.lua" "authorization: Bearer $(jwt_token HS256 bench-hs 'openssl dgst -sha256 -hmac bench-secret -binary')"
wrk_headers "$work/jwt-rs.lua" "authorization: Bearer $(jwt_token RS256 bench-rs "openssl dgst -sha256 -sign $work/jwt.key -binary")"
wrk_headers "$work/cors.lua" "origin: https://app.example.com"
on_r() { printf '[[plugins]]\nname = "%s"\nroute = "r"\nconfig = { %s }\n' "$1" "$2"; }
wasmgate_dir jwt-hs "$JWT_CREDENTIALS" "$(on_r jwt '')"
wasmgate_dir jwt-rs "$JWT_CREDENTIALS" "$(on_r jwt '')"
wasmgate_dir cors "" "$(on_r cors 'origins = ["https://app.example.com", "https://.*\\.example\\.org"], credentials = true')"
wasmgate_dir req-transformer "" "$(on_r request-transformer 'add = { headers = ["x-one:1", "x-two:2"] }, remove = { headers = ["x-three"] }')"
wasmgate_dir resp-transformer "" "$(on_r response-transformer 'add = { headers = ["x-one:1", "x-two:2"] }, remove = { headers = ["x-three"] }')"
# The baseline build gets no plugin modules: an older build may not load newer ones.
mkdir -p "$work/no-plugins"
wasmgate_dir baseline "" "" "$work/no-plugins"
wasmgate_dir baseline-five "" "$FIVE"
wasmgate_dir none-nometrics "" "" "" "metrics = false"
wasmgate_dir five-nometrics "" "$FIVE" "" "metrics = false"

# name | label | command (run in the target's directory) | extra wrk arguments
targets=(
  "nginx|nginx reverse proxy|nginx -p $work/nginx -c nginx.conf|"
  "nginx-lua|nginx + lua: key-auth + counter|nginx -p $work/nginx-lua -c nginx.conf|"
  "bare|bare Pingora|$bin/bare-pingora 127.0.0.1:$PORT $BACKEND 1 $bare_tls|"
  "bare-mimalloc|bare Pingora + mimalloc|$bin/bare-pingora-mimalloc 127.0.0.1:$PORT $BACKEND 1|"
  "none|wasmgate, no plugins|$bin/wasmgate run -c gateway.toml|"
  "none-nometrics|wasmgate, no plugins, metrics off|$bin/wasmgate run -c gateway.toml|"
  "noop|wasmgate, one no-op plugin (access)|$bin/wasmgate run -c gateway.toml|"
  "keyauth-rl|wasmgate, key-auth + rate-limiting|$bin/wasmgate run -c gateway.toml|"
  "five|wasmgate, 5 plugins|$bin/wasmgate run -c gateway.toml|"
  "five-nometrics|wasmgate, 5 plugins, metrics off|$bin/wasmgate run -c gateway.toml|"
  "gray-rust|wasmgate, gray-release (Rust)|$bin/wasmgate run -c gateway.toml|"
  "gray-go|wasmgate, gray-release-go (Go)|$bin/wasmgate run -c gateway.toml|"
  "jwt-hs|wasmgate, jwt (HS256)|$bin/wasmgate run -c gateway.toml|-s $work/jwt-hs.lua"
  "jwt-rs|wasmgate, jwt (RS256)|$bin/wasmgate run -c gateway.toml|-s $work/jwt-rs.lua"
  "cors|wasmgate, cors (an allowed origin, credentials)|$bin/wasmgate run -c gateway.toml|-s $work/cors.lua"
  "req-transformer|wasmgate, request-transformer (3 header operations)|$bin/wasmgate run -c gateway.toml|"
  "resp-transformer|wasmgate, response-transformer (3 header operations)|$bin/wasmgate run -c gateway.toml|"
)
[ -z "${BASELINE:-}" ] || targets+=("baseline|wasmgate $BASELINE, no plugins|$BASELINE run -c gateway.toml|")
[ -z "${BASELINE:-}" ] || [ "${BASELINE_PLUGINS:-0}" = 0 ] ||
  targets+=("baseline-five|wasmgate $BASELINE, 5 plugins|$BASELINE run -c gateway.toml|")
if [ "$edge" = 1 ]; then
  # The same processes, measured over TLS (keep-alive); the tls- prefix picks the https URL.
  targets+=(
    "tls-nginx|nginx, HTTPS keep-alive|nginx -p $work/nginx -c nginx.conf|"
    "tls-bare|bare Pingora, HTTPS keep-alive|$bin/bare-pingora 127.0.0.1:$PORT $BACKEND 1 $bare_tls|"
    "tls-none|wasmgate, no plugins, HTTPS keep-alive|$bin/wasmgate run -c gateway.toml|"
  )
  wasmgate_dir tls-none "" ""
fi

if [ "$scenarios" = 1 ]; then
  # 10,000 routes, one host each; the request goes to one in the middle.
  routes=$(for i in $(seq 1 10000); do
    printf '[[services.routes]]\nname = "r%s"\nhosts = ["api%s.example.com"]\npaths = ["/svc%s"]\n' "$i" "$i" "$i"
  done)
  wasmgate_dir routes10k "$routes" ""
  # 1,000 consumers with key-auth; wrk rotates over their keys.
  consumers=$(for i in $(seq 1 1000); do
    printf '[[consumers]]\nusername = "consumer-%s"\n[[consumers.keyauth_credentials]]\nkey = "key-%s"\n' "$i" "$i"
  done)
  wasmgate_dir consumers1k "$consumers" "$KEY_AUTH_RL"
  cat > "$work/rotate.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, { ["apikey"] = "key-" .. (n % 1000 + 1) })
end
LUA
  # key-auth + rate-limiting + stamp, whose .wasm is replaced every second (--watch).
  wasmgate_dir hotload "" "$KEY_AUTH_RL"'
[[plugins]]
name = "stamp"
route = "r"'
  # A plugin on route /loop that loops until its CPU deadline when asked (the test plugin
  # misbehave); the quarantine and its per-client keying as configured by default.
  mkdir -p "$work/loop-plugins"
  cp target/test-plugins/misbehave.wasm "$work/loop-plugins/"
  LOOP_ROUTE='[[services.routes]]
name = "loop"
paths = ["/loop"]'
  LOOP_PLUGIN='[[plugins]]
name = "misbehave"
route = "loop"'
  wasmgate_dir loop-quiet "$LOOP_ROUTE" "$LOOP_PLUGIN" "$work/loop-plugins"
  wasmgate_dir loop "$LOOP_ROUTE" "$LOOP_PLUGIN" "$work/loop-plugins"
  wasmgate_dir loop-noq "$LOOP_ROUTE" "[defaults]
quarantine = { after = 0 }
$LOOP_PLUGIN" "$work/loop-plugins"
  targets+=(
    "loop-quiet|wasmgate, a plugin that can loop, no looping client|$bin/wasmgate run -c gateway.toml|"
    "loop|wasmgate, the same, one client looping it every 100 ms|$bin/wasmgate run -c gateway.toml|"
    "loop-noq|wasmgate, the same, quarantine off|$bin/wasmgate run -c gateway.toml|"
    "routes10k|wasmgate, 10,000 routes, no plugins|$bin/wasmgate run -c gateway.toml|-H Host:api5000.example.com"
    "nginx-lua-1k|nginx + lua, 1,000 consumers|nginx -p $work/nginx-lua -c nginx.conf|-s $work/rotate.lua"
    "consumers1k|wasmgate, key-auth + rate-limiting, 1,000 consumers|$bin/wasmgate run -c gateway.toml|-s $work/rotate.lua"
    "hotload|wasmgate, key-auth + rate-limiting + a plugin replaced every 1 s|env RUST_LOG=info $bin/wasmgate run --watch -c gateway.toml|"
  )
fi

# Every module compiled into the shared cache before anything is measured: a module no target
# uses would otherwise compile in the background while the first target is measured.
# (--instructions: compiled by the valgrind build under valgrind, whose CPU they are for.)
checker="$bin/wasmgate"
[ "$instructions" = 0 ] || checker="valgrind -q --tool=none --trace-children=yes $bin/wasmgate-valgrind"
for d in "$work"/*/; do
  [ ! -f "$d/gateway.toml" ] || (cd "$d" && $checker check -c gateway.toml >/dev/null)
done

# --- measuring -----------------------------------------------------------------------------------
median() { sort -g | awk '{a[NR] = $1} END { print a[int((NR + 1) / 2)] }'; }
# Column c of target n in the results: the median of its rounds.
col() { awk -v n="$1" -v c="$2" '$1 == n {print $c}' "$work/results" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b == 0) print "-"; else printf "%.2f", a / b }'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
to_ms() { # wrk latency (e.g. 812.00us, 1.20ms, 1.01s) in ms
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

wait_ready() { # name [tries, 50 ms apart]: its log is shown if it does not come up
  local code
  for _ in $(seq 1 "${2:-600}"); do
    # Any answer but 503, which is a gateway still compiling the route's modules.
    code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' -H 'apikey: bench-key' "http://127.0.0.1:$PORT/" || true)
    case "$code" in 000 | 503) ;; *) return 0 ;; esac
    sleep 0.05
  done
  echo "bench-compare: $1 did not come up on :$PORT" >&2
  cat "$work/$1.log" >&2
  return 1
}

# Runs one target once; appends "name rps p50 p99 cpu_us rss errors" to $work/results.
measure() {
  local name="$1" label="$2" cmd="$3" extra="$4" dir="$work/$1"
  [ -d "$dir" ] || dir="$work"
  (cd "$dir" && exec $proxy_cpu $cmd >"$work/$name.log" 2>&1) &
  local pid=$! swapper=""
  wait_ready "$name"
  local url="http://127.0.0.1:$PORT/svc5000" base="${name#u-}"
  [[ "$base" != tls-* ]] || url="https://127.0.0.1:$TLS_PORT/svc5000"
  # shellcheck disable=SC2086
  $client_cpu wrk -t1 -c"$conns" -d2s -H 'apikey: bench-key' $extra "$url" >/dev/null
  if [ "$base" = hotload ]; then
    (
      i=0
      while true; do
        sleep 1
        i=$((i + 1))
        if [ $((i % 2)) = 1 ]; then src=target/test-plugins/stamp-v2.wasm; else src=target/test-plugins/stamp.wasm; fi
        cp "$src" "$work/plugins/.stamp.tmp" && mv -f "$work/plugins/.stamp.tmp" "$work/plugins/stamp.wasm"
      done
    ) &
    swapper=$!
  fi
  if [ "$base" = loop ] || [ "$base" = loop-noq ]; then
    # One client sends a looping input every 100 ms; wrk's requests are the other clients.
    (
      while true; do
        curl -s -o /dev/null -m 5 -H 'x-misbehave: loop' "http://127.0.0.1:$PORT/loop" &
        sleep 0.1
      done
    ) &
    swapper=$!
  fi
  local before after out profiler=""
  # PROFILE=NAME records that target with perf during its measurement (into PERF_OUT).
  if [ "${PROFILE:-}" = "$name" ]; then
    perf record -F 2000 ${PERF_CALLGRAPH:--g} -p "$pid" -o "${PERF_OUT:-/tmp/wasmgate.perf}" -- sleep "$duration" >/dev/null 2>&1 &
    profiler=$!
  fi
  before=$(cpu_ticks "$pid")
  # shellcheck disable=SC2086
  out=$($client_cpu wrk -t1 -c"$conns" -d"${duration}s" --latency -H 'apikey: bench-key' $extra "$url")
  after=$(cpu_ticks "$pid")
  [ -z "$profiler" ] || wait "$profiler"
  local rss
  rss=$(rss_mb "$pid")
  if [ -n "$swapper" ]; then
    kill "$swapper"; wait "$swapper" 2>/dev/null || true
  fi
  if [ "$base" = hotload ]; then
    cp target/test-plugins/stamp.wasm "$work/plugins/stamp.wasm"
    echo "  stamp.wasm was loaded $(grep 'plugin module loaded' "$work/$name.log" | grep -c stamp) times" >&2
  fi
  kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  local requests rps p50 p99 errors cpu_us
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
  errors=$(awk '/Non-2xx/ {n += $5} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10} END {print n + 0}' <<<"$out")
  cpu_us=$(awk -v t=$((after - before)) -v hz="$clk_tck" -v n="$requests" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  echo "$name $rps $p50 $p99 $cpu_us $rss $errors" >> "$work/results"
  printf '  %-62s %8s req/s  p99 %6s ms  %s errors\n' "$label" "$rps" "$p99" "$errors" >&2
}

# Idle RSS with plugin modules loaded, each configured on a route of its own: "cold" right after
# compiling them (a new cache directory), "warm" after a restart that finds them compiled on disk.
# Two sets: the nine of issue 7's goal, and the thirteen of issue 26's (those nine, the two log
# plugins and the two Go ones). Each figure is VmRSS, then how much of it is anonymous memory;
# the rest is clean file pages (the binary's and the compiled modules' code, in the page cache).
rss_split() { awk '/^Rss:/ {r = $2} /^Anonymous:/ {a = $2} END {printf "%.1f MB (%.1f anonymous)", r / 1024, a / 1024}' "/proc/$1/smaps_rollup"; }
idle_rss() { # set name, then module names
  local set="$1" d="$work/idle-$1"
  shift
  mkdir -p "$d/plugins"
  local entries="" routes="" modules=""
  for n in "$@"; do
    cp "target/plugins/$n.wasm" "$d/plugins/"
    case "$n" in
      acl) cfg='config = { allow = ["bench"] }' ;;
      gray-release | gray-release-go) cfg='config = { canary_upstream = "canary", headers = ["x-canary=yes"] }' ;;
      ip-restriction) cfg='config = { allow = ["127.0.0.1"] }' ;;
      rate-limiting) cfg='config = { minute = 100 }' ;;
      file-log) cfg='config = { path = "idle.log" }'
        modules+=$'[modules.file-log]\nallow_log_files = ["idle.log"]\n' ;;
      http-log) cfg='config = { http_endpoint = "http://127.0.0.1:9/log" }'
        modules+=$'[modules.http-log]\nallow_log_endpoints = ["http://127.0.0.1:9/log"]\n' ;;
      *) cfg='' ;;
    esac
    entries+=$(printf '\n[[plugins]]\nname = "%s"\nroute = "idle-%s"\n%s\n' "$n" "$n" "$cfg")
    routes+=$(printf '\n[[services.routes]]\nname = "idle-%s"\npaths = ["/idle/%s"]\n' "$n" "$n")
  done
  gateway_toml "$routes" > "$d/gateway.toml"
  printf 'plugins_dir = "plugins"\ncache_dir = "%s/cache"\n%s%s\n' "$d" "$modules" "$entries" > "$d/plugins.toml"
  local rss=()
  for start in cold warm; do
    (cd "$d" && exec $proxy_cpu "$bin/wasmgate" run -c gateway.toml >"$work/idle-$set.log" 2>&1) &
    local pid=$!
    wait_ready "idle-$set" 1200
    # The modules compile after the listener opens (their routes answer 503 meanwhile); then
    # each route serves one request, so that the code the requests run is resident.
    for n in "$@"; do
      for _ in $(seq 1 2400); do
        curl -s -m 2 "http://127.0.0.1:$PORT/idle/$n" | grep -q 'is still compiling' || break
        sleep 0.05
      done
    done
    sleep 1
    rss+=("$(rss_split "$pid")")
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
  done
  echo "${rss[0]} after compiling them, ${rss[1]} after a restart (compiled code cached)"
}
nine=(acl bot-detection correlation-id gray-release ip-restriction key-auth rate-limiting request-termination ua-rate-limiting)

# --- instructions per request (--instructions) ----------------------------------------------------
# The headers a target's wrk arguments add (-H, and the wrk.headers lines of a -s script), one
# "name: value" per line.
extra_headers() {
  local args=($1) i
  for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
      -H) echo "${args[i + 1]/:/: }" ;;
      -s) sed -n 's/^wrk.headers\["\(.*\)"\] = "\(.*\)"$/\1: \2/p' "${args[i + 1]}" ;;
    esac
  done
}
# Sends $1 requests on one keep-alive connection, with the bench key and extra header lines.
cat > "$work/client.py" <<'PY'
import http.client, sys
n, port = int(sys.argv[1]), int(sys.argv[2])
headers = {"apikey": "bench-key"}
headers.update(line.split(": ", 1) for line in sys.argv[3].splitlines() if line)
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
statuses = set()
for _ in range(n):
    conn.request("GET", "/svc5000", headers=headers)
    response = conn.getresponse()
    response.read()
    statuses.add(response.status)
if statuses != {200}:
    sys.exit(f"answers other than 200: {sorted(statuses)}")
PY
instructions_per_request() { # name command extra: prints the count
  local name="$1" cmd="$2" headers dir="$work/$1" n pid totals=()
  headers=$(extra_headers "$3")
  [ -d "$dir" ] || dir="$work"
  for n in "$n1" "$n2"; do
    # shellcheck disable=SC2086
    (cd "$dir" && exec "${perfmap[@]}" valgrind --tool=callgrind --callgrind-out-file="$profiles/$name.$n.out" $cmd \
      >"$work/$name.log" 2>&1) &
    pid=$!
    wait_ready "$name" 2400
    python3 "$work/client.py" "$n" "$PORT" "$headers" || { cat "$work/$name.log" >&2; return 1; }
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    totals+=("$(awk '/^summary:/ {print $2}' "$profiles/$name.$n.out")")
  done
  if [ "$guest" = 1 ]; then
    bench/guest-functions.py "$profiles/$name.$n1.out" "$profiles/$name.$n2.out" $((n2 - n1)) >"$profiles/$name.guest.txt"
    for n in "$n1" "$n2"; do rm -f "/tmp/perf-$(awk '/^pid:/ {print $2; exit}' "$profiles/$name.$n.out").map"; done
  fi
  echo $(((totals[1] - totals[0]) / (n2 - n1)))
}
if [ "$instructions" = 1 ]; then
  profiles="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/instructions"
  rm -rf "$profiles"; mkdir -p "$profiles"
  : > "$work/results"
  for t in "${targets[@]}"; do
    IFS='|' read -r name label cmd extra <<<"$t"
    [[ " ${ONLY:-bare bare-mimalloc none noop keyauth-rl five jwt-hs baseline baseline-five} " == *" $name "* ]] || continue
    count=$(instructions_per_request "$name" "${cmd//$bin\/wasmgate /$bin/wasmgate-valgrind }" "$extra")
    echo "$name $count" >> "$work/results"
    printf '  %-62s %8s instructions per request\n' "$label" "$count" >&2
  done
  {
    echo "| target | instructions per request | x no plugins | x bare Pingora |"
    echo "| --- | ---: | ---: | ---: |"
    for t in "${targets[@]}"; do
      IFS='|' read -r name label _ _ <<<"$t"
      c=$(col "$name" 2)
      [ -z "$c" ] || echo "| $label | $c | $(ratio "$c" "$(col none 2)") | $(ratio "$c" "$(col bare 2)") |"
    done
    echo
    echo "callgrind over $((n2 - n1)) requests ($n2 - $n1); profiles in $profiles"
    [ "$guest" = 0 ] || echo "the plugins' functions by instructions per request: $profiles/NAME.guest.txt"
  } | tee target/bench-instructions.md
  exit 0
fi

echo "bench-compare: $rounds rounds x ${duration}s, wrk -t1 -c$conns, $(nproc) cores" >&2
for round in $(seq 1 "$rounds"); do
  for mode in "${modes[@]}"; do
    echo "round $round/$rounds ($mode)" >&2
    pinning "$mode"
    prefix=""; [ "$mode" = pinned ] || prefix="u-"
    for t in "${targets[@]}"; do
      IFS='|' read -r name label cmd extra <<<"$t"
      # ONLY="none five" measures just those targets.
      [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $name "* ]] || continue
      # The unpinned row runs in the pinned one's directory.
      [ -z "$prefix" ] || ln -sfn "$work/$name" "$work/$prefix$name"
      measure "$prefix$name" "$label${prefix:+ (unpinned)}" "$cmd" "$extra"
    done
  done
done
[ "$cores" -lt 2 ] || pinning pinned
# ONLY="... idle" measures the idle memory too.
if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" idle "* ]]; then
  idle9=$(idle_rss nine "${nine[@]}")
  idle13=$(idle_rss thirteen "${nine[@]}" file-log http-log gray-release-go header-transform)
fi

# --- edge protocols (--edge) ---------------------------------------------------------------------
# Each "name value" line goes to $work/edge: handshakes per second (openssl s_time, new and
# resumed sessions), h2 requests per second (h2load, 100 streams over 10 connections), gRPC unary
# calls per second (a grpcio client, 50 in flight) through the gateway and straight to the server.
edge_start() { # name command: starts it in its directory, waits for it
  local dir="$work/$1"
  [ -d "$dir" ] || dir="$work"
  (cd "$dir" && exec $proxy_cpu $2 >"$work/$1.log" 2>&1) &
  edge_pid=$!
  wait_ready "$1"
}
edge_stop() { kill -INT "$edge_pid"; wait "$edge_pid" 2>/dev/null || true; }
handshakes() { # mode (-new or -reuse): connections per wall-clock second over 5 s
  local start end n
  start=$(date +%s.%N)
  # -www: each connection also sends a request and reads the answer, as a client would (a TLS 1.3
  # session ticket is sent with the first answer, so resuming needs one).
  n=$($client_cpu openssl s_time -connect "127.0.0.1:$TLS_PORT" "$1" -www /svc5000 -time 5 2>/dev/null |
    awk '/connections in/ {print $1; exit}')
  end=$(date +%s.%N)
  awk -v n="${n:-0}" -v a="$start" -v b="$end" 'BEGIN { printf "%d", n / (b - a) }'
}
if [ "$edge" = 1 ]; then
  # gRPC clients speak h2c: that gateway's plain listener has http2.
  plain_listen=$listen
  listen="[\"127.0.0.1:$PORT http2\"]"
  wasmgate_dir grpc-none '[[services]]
name = "grpc"
url = "grpc://'"$GRPC_BACKEND"'"
[[services.routes]]
paths = ["/bench.Echo/"]
protocols = ["grpc", "grpcs"]' ""
  listen=$plain_listen
  python3 -m pip install --quiet grpcio >/dev/null 2>&1 || true
  (exec $client_cpu python3 bench/grpc_load.py serve "$GRPC_BACKEND" >"$work/grpc-server.log" 2>&1) &
  pids+=($!)
  for round in $(seq 1 "$rounds"); do
    echo "edge round $round/$rounds" >&2
    for t in "nginx|nginx -p $work/nginx -c nginx.conf" "bare|$bin/bare-pingora 127.0.0.1:$PORT $BACKEND 1 $bare_tls" \
      "none|$bin/wasmgate run -c gateway.toml"; do
      IFS='|' read -r name cmd <<<"$t"
      edge_start "$name" "$cmd"
      if [ "$name" != bare ]; then
        echo "hs-new-$name $(handshakes -new)" >> "$work/edge"
        echo "hs-reuse-$name $(handshakes -reuse)" >> "$work/edge"
      fi
      # A warm-up first (connections, pools), then about `duration` seconds of requests.
      $client_cpu h2load -n 5000 -c 10 -m 10 "https://127.0.0.1:$TLS_PORT/svc5000" >/dev/null 2>&1
      h2=$($client_cpu h2load -n $((duration * 20000)) -c 10 -m 10 "https://127.0.0.1:$TLS_PORT/svc5000" 2>/dev/null |
        awk '/^finished in/ {gsub(",", ""); print int($4)}')
      echo "h2-$name ${h2:-0}" >> "$work/edge"
      edge_stop
    done
    edge_start grpc-none "$bin/wasmgate run -c gateway.toml"
    echo "grpc-none $($client_cpu python3 bench/grpc_load.py call "127.0.0.1:$PORT" "$duration")" >> "$work/edge"
    edge_stop
    echo "grpc-direct $($client_cpu python3 bench/grpc_load.py call "$GRPC_BACKEND" "$duration")" >> "$work/edge"
  done
  cat "$work/edge" >&2
fi

# --- report --------------------------------------------------------------------------------------
{
  echo "| target | req/s | p50 ms | p99 ms | CPU µs/req | RSS MB | errors | x nginx | x bare Pingora | req/s unpinned | x bare unpinned |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  nginx_rps=$(col nginx 2); bare_rps=$(col bare 2); bare_mi_rps=$(col bare-mimalloc 2); bare_u=$(col u-bare 2)
  for t in "${targets[@]}"; do
    IFS='|' read -r name label _ _ <<<"$t"
    rps=$(col "$name" 2)
    [ -n "$rps" ] || continue
    errors=$(awk -v n="$name" '$1 == n {s += $7} END {print s + 0}' "$work/results")
    rps_u=$(col "u-$name" 2)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$rps" "$(col "$name" 3)" \
      "$(col "$name" 4)" "$(col "$name" 5)" "$(col "$name" 6)" "$errors" "$(ratio "$rps" "$nginx_rps")" \
      "$(ratio "$rps" "$bare_rps")" "${rps_u:--}" "$(ratio "$rps_u" "$bare_u")"
  done
  none=$(col none 2); none_u=$(col u-none 2)
  echo
  echo "Ratios (goals in docs/BENCHMARKS.md):"
  echo "- wasmgate no plugins / bare Pingora: $(ratio "$none" "$bare_rps") req/s, $(ratio "$(col none 4)" "$(col bare 4)") p99 (goals: >= 0.95, <= 1.1)"
  echo "- wasmgate no plugins / bare Pingora + mimalloc: $(ratio "$none" "$bare_mi_rps") req/s, $(ratio "$(col none 4)" "$(col bare-mimalloc 4)") p99"
  [ -z "${BASELINE:-}" ] || echo "- wasmgate no plugins / the baseline build: $(ratio "$none" "$(col baseline 2)") req/s, $(ratio "$(col none 5)" "$(col baseline 5)") CPU per request"
  [ -z "${BASELINE:-}" ] || [ "${BASELINE_PLUGINS:-0}" = 0 ] || echo "- wasmgate five plugins / the baseline build's: $(ratio "$(col five 2)" "$(col baseline-five 2)") req/s, $(ratio "$(col five 5)" "$(col baseline-five 5)") CPU per request"
  echo "- one no-op plugin / no plugins: $(ratio "$(col noop 2)" "$none") req/s, $(ratio "$(col none 5)" "$(col noop 5)") CPU per request (the floor of any plugin)"
  echo "- key-auth + rate-limiting / no plugins: $(ratio "$(col keyauth-rl 2)" "$none") (goal: >= 0.85)"
  echo "- five plugins / no plugins: $(ratio "$(col five 2)" "$none") (goal: >= 0.75)"
  echo "- unpinned (proxy, wrk and backend sharing the cores): no plugins / bare Pingora $(ratio "$none_u" "$bare_u"), key-auth + rate-limiting / no plugins $(ratio "$(col u-keyauth-rl 2)" "$none_u"), five plugins / no plugins $(ratio "$(col u-five 2)" "$none_u")"
  echo "- metrics on / off: $(ratio "$none" "$(col none-nometrics 2)") req/s with no plugins, $(ratio "$(col five 2)" "$(col five-nometrics 2)") with five (goal: >= 0.97)"
  echo "- jwt / no plugins: HS256 $(ratio "$(col jwt-hs 2)" "$none") (goal: >= 0.9), RS256 $(ratio "$(col jwt-rs 2)" "$none") (goal: >= 0.8); cors: $(ratio "$(col cors 2)" "$none")"
  echo "- three header operations / no plugins: request-transformer $(ratio "$(col req-transformer 2)" "$none"), response-transformer $(ratio "$(col resp-transformer 2)" "$none") (goals: >= 0.9)"
  echo "- gray-release in Go / in Rust: $(ratio "$(col gray-go 2)" "$(col gray-rust 2)") req/s, $(ratio "$(col gray-go 5)" "$(col gray-rust 5)") CPU per request"
  echo "- idle RSS with the 9 bundled plugins loaded: ${idle9:--} (goal: <= 64 MB)"
  echo "- idle RSS with 13 modules loaded (those 9, the log plugins, the Go ones): ${idle13:--} (goal: <= 64 MB)"
  [ "$scenarios" = 0 ] || echo "- other clients' p99 with a client looping every 100 ms / without: $(ratio "$(col loop 4)" "$(col loop-quiet 4)") (goal: <= 1.5, 0 errors), $(ratio "$(col loop-noq 4)" "$(col loop-quiet 4)") with the quarantine off"
  if [ "$edge" = 1 ]; then
    e() { awk -v n="$1" '$1 == n {print $2}' "$work/edge" | median; }
    echo "- HTTPS keep-alive, wasmgate no plugins / bare Pingora with TLS: $(ratio "$(col tls-none 2)" "$(col tls-bare 2)") (goal: >= 0.95); / nginx with TLS: $(ratio "$(col tls-none 2)" "$(col tls-nginx 2)"); / its own plain HTTP: $(ratio "$(col tls-none 2)" "$none")"
    echo "- new TLS connections per second (a handshake and one request each), wasmgate / nginx: $(e hs-new-none) / $(e hs-new-nginx) = $(ratio "$(e hs-new-none)" "$(e hs-new-nginx)") (goal: >= 0.9); resumed: $(e hs-reuse-none) / $(e hs-reuse-nginx) = $(ratio "$(e hs-reuse-none)" "$(e hs-reuse-nginx)")"
    echo "- h2 requests per second (h2load, 10 connections x 10 streams), wasmgate / bare Pingora: $(e h2-none) / $(e h2-bare) = $(ratio "$(e h2-none)" "$(e h2-bare)") (goal: >= 0.9); / nginx: $(ratio "$(e h2-none)" "$(e h2-nginx)")"
    echo "- gRPC unary calls per second (grpcio client, 50 in flight), through wasmgate (h2c) / straight to the server: $(e grpc-none) / $(e grpc-direct) = $(ratio "$(e grpc-none)" "$(e grpc-direct)")"
  fi
  echo
  echo "$rounds rounds x ${duration}s, wrk -t1 -c$conns; median per target; $(nproc) cores, proxy pinned: ${proxy_cpu:-no}."
} | tee target/bench-compare.md

# Shared by launch/run, launch/test and launch/bench. Sourced, not executed.
# Installs what is missing (Debian packages, as root) and starts private Redis and PostgreSQL
# servers under a temporary directory.

VOXSYNC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="/opt/swift/usr/bin:/usr/lib/postgresql/15/bin:$PATH"

log() { printf '\033[1m[%s]\033[0m %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt_ensure PKG... : installs the Debian packages that are not installed yet.
apt_ensure() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}. Install them: sudo apt-get install -y ${missing[*]}"
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

# What building needs: the C libraries voxsync links against.
ensure_build_deps() {
  command -v swift >/dev/null || die "Swift 6 toolchain not found (expected /opt/swift/usr/bin/swift); install it from swift.org"
  apt_ensure pkg-config libsqlite3-dev libzstd-dev libhiredis-dev
}

# What the tests and benchmarks need besides: Redis and PostgreSQL servers, protoc for the
# protocol check.
ensure_service_deps() {
  apt_ensure redis-server redis-tools
  command -v initdb >/dev/null && command -v pg_ctl >/dev/null || apt_ensure postgresql
  command -v initdb >/dev/null || die "initdb not found even after installing postgresql"
}

# start_redis DIR : a private redis-server on DIR/redis.sock (no TCP port). Sets REDIS_SOCKET.
start_redis() {
  local dir="$1"
  redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --daemonize yes \
    --save '' --appendonly no --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
    || die "redis-server did not start (see $dir/redis.log)"
  for _ in $(seq 100); do [ -S "$dir/redis.sock" ] && break; sleep 0.05; done
  [ -S "$dir/redis.sock" ] || die "redis-server did not create $dir/redis.sock"
  REDIS_SOCKET="$dir/redis.sock"
  export REDIS_SOCKET
}

stop_redis() {
  local dir="$1"
  [ -f "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
}

# init_postgres_cluster DIR : a new cluster in DIR/data (trust auth, user postgres).
# PostgreSQL refuses to run as root, so as root the cluster belongs to the 'postgres' user.
init_postgres_cluster() {
  local dir="$1"
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$dir"
  fi
  as_postgres initdb -D "$dir/data" -U postgres -A trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || die "initdb failed (see $dir/initdb.log)"
}

# start_postgres_cluster DIR PORT : starts the cluster in DIR on a Unix socket in DIR and on
# 127.0.0.1:PORT, tuned for throwaway data (no fsync).
start_postgres_cluster() {
  local dir="$1" port="$2"
  as_postgres pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null || die "PostgreSQL did not start (see $dir/server.log)"
}

# stop_postgres_cluster DIR : a fast shutdown (sessions cut, every commit kept). Not
# "immediate": with synchronous_commit=off a crash-like stop loses the last commits, which is
# the server's promise broken on purpose, not something a client can detect.
stop_postgres_cluster() {
  local dir="$1"
  [ -d "$dir/data" ] || return 0
  as_postgres pg_ctl -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# unused_port : prints a TCP port nothing uses on this machine right now, below the kernel's
# ephemeral range (from 32768): a port inside it can be taken at any moment by an outgoing
# connection, so a server restarted on it (the tests stop and start PostgreSQL) may find it gone.
unused_port() {
  local port tries=0
  command -v ss >/dev/null 2>&1 || log "warning: ss (iproute2) not found: the port is not checked for use"
  while :; do
    port=$(( 20000 + RANDOM % 12000 ))
    if ! command -v ss >/dev/null 2>&1 || [ -z "$(ss -Htan "sport = :$port" 2>/dev/null)" ]; then
      echo "$port"; return 0
    fi
    tries=$(( tries + 1 ))
    [ "$tries" -lt 200 ] || die "no unused TCP port found in 20000-31999"
  done
}

# start_postgres DIR : the tests' shared throwaway cluster in DIR/pg on an unused port.
# Sets POSTGRES_URL and POSTGRES_DIR.
start_postgres() {
  local dir="$1/pg" port
  port=$(unused_port)
  chmod 755 "$1"  # mktemp made it 0700; the postgres user must reach DIR/pg
  init_postgres_cluster "$dir"
  start_postgres_cluster "$dir" "$port"
  POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
  POSTGRES_DIR="$dir"
  export POSTGRES_URL POSTGRES_DIR
}

stop_postgres() {
  stop_postgres_cluster "$1/pg"
}

# shellcheck shell=bash
# Helpers shared by the interop/kerberos/ scripts (sourced, not run).
# Adapted from the verified recipe ../shared/interop/kerberos/lib.sh (the project's own copy: a fresh
# clone needs nothing outside it).

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
APT_TIMEOUT="${APT_TIMEOUT:-600}"

pkg_installed() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^[ih]i'; }

# krb_apt_install PKG... : installs the packages not yet installed, never starting a distro service (the
# KDC's would bind 0.0.0.0:88); apt-get update only when a package has no candidate yet.
krb_apt_install() {
  local need=() p created_policy=0 rc=0
  for p in "$@"; do pkg_installed "$p" || need+=("$p"); done
  [ "${#need[@]}" -gt 0 ] || return 0
  echo "[kerberos] installing ${need[*]}" >&2
  for p in "${need[@]}"; do
    if ! apt-cache policy "$p" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      timeout "$APT_TIMEOUT" $SUDO apt-get -o DPkg::Lock::Timeout=300 update -q >&2 || true
      break
    fi
  done
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  timeout "$APT_TIMEOUT" $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${need[@]}" >&2 || rc=$?
  if [ "$created_policy" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
  return "$rc"
}

# The harness's host names, each on its OWN /etc/hosts line: getaddrinfo(AI_CANONNAME) answers the first name
# of the matching line, and browsers (and krb5 with dns_canonicalize_hostname = true) build the service
# principal from that canonical name: "127.0.0.1 xmpp.example.test proxy.example.test" would turn
# HTTP/proxy.example.test into HTTP/xmpp.example.test. Idempotent.
KRB_HOSTNAMES="xmpp.example.test proxy.example.test kdc.example.test"
ensure_hosts() {
  local h
  for h in $KRB_HOSTNAMES; do
    if ! grep -Eq "^[[:space:]]*127\.0\.0\.1[[:space:]]+$h([[:space:]]|\$)" /etc/hosts; then
      echo "[kerberos] adding '127.0.0.1 $h' to /etc/hosts" >&2
      echo "127.0.0.1 $h   # added by interop/kerberos" | $SUDO tee -a /etc/hosts >/dev/null
    fi
  done
  for h in $KRB_HOSTNAMES; do
    [ "$(getent ahostsv4 "$h" | awk 'NR==1{print $1}')" = 127.0.0.1 ] \
      || { echo "[kerberos] $h does not resolve to 127.0.0.1" >&2; return 1; }
  done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
_PICKED=" "
pick_port() { # a random free TCP port on 127.0.0.1, not picked before in this shell
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 12000 ))
    case "$_PICKED" in *" $p "*) continue ;; esac
    port_in_use "$p" && continue
    _PICKED+="$p "
    echo "$p"
    return 0
  done
  echo "[kerberos] no free port" >&2
  return 1
}

# pid files: <workdir>/pids/<name>.pid holding "<pid> <comm>"; a process is only signalled while its
# /proc/PID/comm still matches, and a zombie counts as dead (kill -0 succeeds on zombies).
not_zombie() { [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
pid_alive() { # workdir name
  local f="$1/pids/$2.pid" pid comm
  [ -f "$f" ] || return 1
  read -r pid comm < "$f" || true
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && not_zombie "$pid" || return 1
  [ -z "$comm" ] || grep -q "^${comm:0:15}" "/proc/$pid/comm" 2>/dev/null
}
stop_pidfile() { # pidfile: TERM, up to 5 s, then KILL
  local f="$1" pid comm name
  name="$(basename "$f" .pid)"
  read -r pid comm < "$f" || true
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && not_zombie "$pid"; then
    if [ -n "$comm" ] && ! grep -q "^${comm:0:15}" "/proc/$pid/comm" 2>/dev/null; then
      echo "$name: PID $pid is now '$(cat "/proc/$pid/comm" 2>/dev/null)', not '$comm'; left alone"
    else
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null && not_zombie "$pid" || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null && not_zombie "$pid"; then kill -9 "$pid" 2>/dev/null || true; fi
      echo "$name: stopped PID $pid"
    fi
  else
    echo "$name: PID ${pid:-?} not running"
  fi
  rm -f "$f"
}

#!/bin/bash
# Run apt-get / apt-cache through a private configuration: its own sources
# list and lists directory, so the machine's apt setup is never modified.
#
# The deb-src and backports lines reuse the Debian mirror URI that the machine
# already has configured (first one found in /etc/apt), so no registry host is
# written into any file of this project.
#
# Usage: scripts/apt-private.sh {update|apt-get ARGS...|apt-cache ARGS...}
#        scripts/apt-private.sh mirror           print that mirror URI
#        scripts/apt-private.sh security-mirror  print the URI the machine
#                                                has for bookworm-security
#                                                (nothing if none)
#
# GMEM_APT_PROFILE selects the suites (each profile has its own state, so
# one never sees the packages of another):
#   base (default)  deb-src sid, deb bookworm-backports: the QEMU base and
#                   the build tools
#   sid             deb and deb-src sid, for downloading (apt-get download,
#                   apt-get source) only: never install from it
#   bookworm-src    deb-src bookworm and bookworm-updates
set -euo pipefail

PROFILE=${GMEM_APT_PROFILE:-base}
STATE=${GMEM_APT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-guest-memfd/apt}
if [ "$PROFILE" != base ]; then
    STATE=$STATE-$PROFILE
fi

mirror_uri() {
    local uri
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' \
              /etc/apt/sources.list.d/*.sources 2>/dev/null |
          grep -v -- '-security' | head -n1 || true)
    if [ -z "$uri" ]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {
                     for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
                  /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
              head -n1 || true)
    fi
    if [ -z "$uri" ]; then
        echo "apt-private: no Debian mirror URI configured in /etc/apt" >&2
        exit 1
    fi
    echo "$uri"
}

# The URI of the first enabled entry for a *-security suite.
security_uri() {
    {
        awk 'BEGIN { RS = ""; FS = "\n" }
             { uris = ""; suites = ""; enabled = 1
               for (i = 1; i <= NF; i++) {
                   if ($i ~ /^URIs:/) uris = substr($i, 6)
                   if ($i ~ /^Suites:/) suites = substr($i, 8)
                   if ($i ~ /^Enabled: *no/) enabled = 0
               }
               if (enabled && suites ~ /-security/) {
                   split(uris, u, " "); for (j in u) { print u[j]; exit }
               } }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true
        awk '$1 == "deb" {
                 for (i = 2; i < NF; i++)
                     if ($i ~ /:\/\//) { if ($(i + 1) ~ /-security$/) print $i; break } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
    } | head -n1
}

setup() {
    local uri
    uri=$(mirror_uri)
    mkdir -p "$STATE/lists/partial" "$STATE/archives/partial"
    case "$PROFILE" in
    base)
        printf 'deb-src %s sid main\ndeb %s bookworm-backports main\n' \
            "$uri" "$uri" ;;
    sid)
        printf 'deb %s sid main\ndeb-src %s sid main\n' "$uri" "$uri" ;;
    bookworm-src)
        printf 'deb-src %s bookworm main\ndeb-src %s bookworm-updates main\n' \
            "$uri" "$uri" ;;
    *)
        echo "apt-private: unknown GMEM_APT_PROFILE '$PROFILE'" >&2
        exit 2 ;;
    esac > "$STATE/sources.list.new"
    mv "$STATE/sources.list.new" "$STATE/sources.list"
}

opts() {
    echo "-o Dir::Etc::SourceList=$STATE/sources.list" \
         "-o Dir::Etc::SourceParts=/dev/null" \
         "-o Dir::State::Lists=$STATE/lists" \
         "-o Dir::Cache::Archives=$STATE/archives" \
         "-o APT::Sandbox::User=root"
}

cmd=${1:-}
shift || true
case "$cmd" in
mirror)
    mirror_uri
    ;;
security-mirror)
    security_uri
    ;;
update)
    setup
    # shellcheck disable=SC2046
    apt-get $(opts) -q update
    touch "$STATE/updated"
    ;;
apt-get|apt-cache)
    if [ ! -f "$STATE/updated" ]; then
        "$0" update >&2
    fi
    # shellcheck disable=SC2046
    exec "$cmd" $(opts) "$@"
    ;;
*)
    echo "usage: $0 {update|apt-get ARGS...|apt-cache ARGS...|mirror|security-mirror}" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Build the image's base locally, for a machine that cannot pull debian:bookworm-slim from a registry
# (CI): a minimal Debian (debootstrap --variant=minbase) from this machine's own Debian mirror, trimmed
# the way the slim images are, imported into Docker. Then:
#   docker build --build-arg BASE_IMAGE=glpi-gateway-base:bookworm -t glpi-gateway .
#
# Usage (as root, with debootstrap installed and a Docker engine reachable):
#   scripts/docker-base.sh [TAG]          TAG defaults to glpi-gateway-base:$SUITE
# Environment: SUITE (bookworm), MIRROR and SECURITY_MIRROR (default: read from /etc/apt's sources).
set -euo pipefail

SUITE=${SUITE:-bookworm}
TAG=${1:-glpi-gateway-base:$SUITE}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# The URI of the first enabled "deb" source that serves suite $1, in the one-line format
# (sources.list, *.list) or the deb822 one (*.sources), the files apt itself reads.
apt_uri_for_suite() {
  local suite=$1 file uri
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $file ]] || continue
    uri=$(awk -v suite="$suite" '
      $1 == "deb" {
        i = 2
        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }  # skip [options]
        if ($(i + 1) == suite) { print $i; exit }
      }' "$file")
    if [[ -n $uri ]]; then echo "$uri"; return; fi
  done
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -f $file ]] || continue
    uri=$(awk -v suite="$suite" '
      function stanza_end() {
        if (types ~ /(^| )deb( |$)/ && enabled != "no" && (" " suites " ") ~ (" " suite " ")) {
          split(uris, first, " "); print first[1]; found = 1; exit
        }
        types = uris = suites = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { stanza_end(); next }
      {
        name = tolower($1); value = $0; sub(/^[^:]*:[ \t]*/, "", value)
        if (name == "types:") types = value
        else if (name == "uris:") uris = value
        else if (name == "suites:") suites = value
        else if (name == "enabled:") enabled = tolower(value)
      }
      END { if (!found) stanza_end() }' "$file")
    if [[ -n $uri ]]; then echo "$uri"; return; fi
  done
}

MIRROR=${MIRROR:-$(apt_uri_for_suite "$SUITE")}
SECURITY_MIRROR=${SECURITY_MIRROR:-$(apt_uri_for_suite "$SUITE-security")}
if [[ -z $MIRROR ]]; then
  echo "docker-base.sh: no Debian mirror for $SUITE in /etc/apt's sources; set MIRROR=<url>" >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "docker-base.sh: install debootstrap (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/glpi-gateway-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

echo "docker-base.sh: debootstrap $SUITE (minbase) from $MIRROR"
debootstrap --variant=minbase --keyring="$KEYRING" "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

# Packages installed later (the Dockerfile's apt-get) leave out documentation, manuals and
# translations, as in Debian's slim images; the ones debootstrap installed lose theirs now.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# No documentation, manuals or translations in a container image (copyright notices stay).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,info,groff,lintian,linda,locale}/*

# apt keeps neither the downloaded packages, nor its binary caches (tens of MB in every layer that
# runs apt-get), nor translated descriptions; the lists come and go with each `apt-get update` (the
# Dockerfile removes them in the same layer).
cat >"$rootfs/etc/apt/apt.conf.d/docker-slim" <<'EOF'
APT::Keep-Downloaded-Packages "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
EOF
rm -f "$rootfs/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n' \
    "$MIRROR" "$SUITE" "$SUITE" "$KEYRING"
  if [[ -n $SECURITY_MIRROR ]]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
      "$SECURITY_MIRROR" "$SUITE" "$KEYRING"
  fi
} >"$rootfs/etc/apt/sources.list.d/debian.sources"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
mkdir -p "$rootfs/var/lib/apt/lists/partial"
# Docker provides these in every container.
rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"

# The local certificate authorities this machine trusts (a TLS-inspecting proxy's, a company's): the
# Dockerfile's ca-certificates package adds them to the image's bundle, so pip reaches PyPI from the
# build as it does from this machine. None on a machine without them.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
fi

tar --numeric-owner -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$TAG" >/dev/null
echo "docker-base.sh: $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}'))"

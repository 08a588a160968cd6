#!/bin/sh
# Installs bubblewrap (bwrap), the sandbox rebench runs agents in, and checks that it works.
#
# Idempotent: does nothing when a working bwrap is already on PATH. Runs `apt-get update` only
# when the package is not known to apt yet (fresh container with empty lists). Prints what it did.
# Needs root (or sudo) and a Debian/Ubuntu system; elsewhere it says what to install by hand.
set -eu

say() { printf 'install-sandbox: %s\n' "$*"; }

probe() {
    # The same probe the harness makes: a trivial command in a fresh set of namespaces.
    bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev true 2>/dev/null
}

if command -v bwrap >/dev/null 2>&1; then
    if probe; then
        say "bubblewrap already installed and working: $(command -v bwrap) ($(bwrap --version 2>/dev/null || echo 'version unknown'))"
        exit 0
    fi
    say "bwrap is installed at $(command -v bwrap) but cannot create namespaces here:"
    bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev true || true
    say "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0),"
    say "or run the container with CAP_SYS_ADMIN / without a seccomp profile that blocks clone(CLONE_NEWUSER)."
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "no apt-get here: install the 'bubblewrap' package with this system's package manager"
    exit 1
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=sudo
    else
        say "not root and no sudo: run 'apt-get install bubblewrap' as root"
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# `apt-cache policy` prints "Candidate: (none)" (or nothing) when the lists do not know the package.
if apt-cache policy bubblewrap 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    say "package lists already know bubblewrap; skipping apt-get update"
else
    say "running apt-get update (package lists do not know bubblewrap yet)"
    $SUDO apt-get update -q
fi
say "running apt-get install bubblewrap"
$SUDO apt-get install -y -q --no-install-recommends bubblewrap

if probe; then
    say "installed $(command -v bwrap) ($(bwrap --version 2>/dev/null || echo 'version unknown')); probe passed"
else
    say "installed bubblewrap, but it cannot create namespaces here:"
    bwrap --unshare-all --die-with-parent --ro-bind / / --proc /proc --dev /dev true || true
    exit 1
fi

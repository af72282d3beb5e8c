#!/usr/bin/env bash
# System packages MAGRAY needs beyond Python: bubblewrap (`bwrap`), the OS sandbox of the
# agent's commands, and Chromium, the browser of the dashboard's browser tests (Playwright
# drives Debian's /usr/bin/chromium; it never downloads one). Idempotent: installs only what
# is missing, and says what it did.
# Linux only; elsewhere it says so and does nothing. It never fails the install: without a
# working sandbox MAGRAY still runs, and every command asks for approval.
set -euo pipefail

say() { printf 'system-deps: %s\n' "$*"; }

if [ "$(uname -s)" != "Linux" ]; then
    say "not Linux: no OS sandbox to install (commands will ask for approval)."
    exit 0
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}

# Chromium for the dashboard's browser tests (tests/dashboard). Without it those tests fail
# with a message naming this script; MAGRAY itself never needs a browser.
if command -v chromium >/dev/null 2>&1; then
    say "chromium already installed ($(command -v chromium))."
elif command -v apt-get >/dev/null 2>&1; then
    say "installing chromium with apt-get (for the dashboard's browser tests) ..."
    if as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
        || { as_root apt-get update -q >/dev/null 2>&1 || true; \
             as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null; }; then
        say "installed chromium ($(command -v chromium))."
    else
        say "could not install chromium (needs root); the dashboard's browser tests will fail until: sudo apt-get install chromium"
    fi
else
    say "no apt-get here: install chromium with your package manager for the dashboard's browser tests."
fi

if command -v bwrap >/dev/null 2>&1; then
    say "bubblewrap already installed ($(command -v bwrap))."
elif command -v apt-get >/dev/null 2>&1; then
    say "installing bubblewrap with apt-get ..."
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bubblewrap >/dev/null 2>&1; then
        as_root apt-get update -q >/dev/null 2>&1 || true
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends bubblewrap >/dev/null; then
            say "could not install bubblewrap (needs root or passwordless sudo); run: sudo apt-get install bubblewrap"
            say "until then every command the agent runs asks for approval."
            exit 0
        fi
    fi
    say "installed bubblewrap ($(command -v bwrap))."
else
    say "no apt-get here: install bubblewrap with your package manager (dnf/pacman/apk install bubblewrap)."
    exit 0
fi

# Ubuntu 23.10+ forbids unprivileged user namespaces unless an AppArmor profile allows the
# program; give bwrap the profile Ubuntu documents for it when that restriction is on.
probe() { bwrap --ro-bind / / --proc /proc --dev /dev --unshare-pid --unshare-net true >/dev/null 2>&1; }
restrict=/proc/sys/kernel/apparmor_restrict_unprivileged_userns
profile=/etc/apparmor.d/bwrap
if ! probe && [ -r "$restrict" ] && [ "$(cat "$restrict")" = "1" ] && [ ! -e "$profile" ]; then
    say "user namespaces are restricted by AppArmor: adding the bwrap profile $profile ..."
    tmp=$(mktemp)
    cat >"$tmp" <<PROFILE
abi <abi/4.0>,
include <tunables/global>
profile bwrap $(command -v bwrap) flags=(unconfined) {
  userns,
  include if exists <local/bwrap>
}
PROFILE
    if as_root install -m 0644 "$tmp" "$profile" && as_root apparmor_parser -r "$profile"; then
        say "AppArmor profile for bwrap loaded."
    else
        say "could not load the AppArmor profile (needs root); commands will ask for approval."
    fi
    rm -f "$tmp"
fi

if probe; then
    say "bubblewrap works: commands run in the OS sandbox."
else
    say "bubblewrap is installed but cannot create a sandbox here; commands will ask for approval."
fi


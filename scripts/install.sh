#!/bin/sh
# make install / make uninstall: the two static binaries, a man page per command and the
# bash, zsh and fish completions under PREFIX (staged under DESTDIR when given).
#
# usage: scripts/install.sh install|uninstall BIN_DIR DESTDIR PREFIX
#   ZSH_COMPLETIONS  where zsh's completion goes, under PREFIX [share/zsh/site-functions]
#                    (Debian's package: share/zsh/vendor-completions)
set -eu
[ $# -eq 4 ] || { echo "usage: $0 install|uninstall BIN_DIR DESTDIR PREFIX" >&2; exit 2; }
action=$1 bin=$2 dest=$3$4
zsh=$dest/${ZSH_COMPLETIONS:-share/zsh/site-functions}

case $action in
install)
    for b in launcher pause; do
        [ -x "$bin/$b" ] || { echo "$bin/$b: not built (make build)" >&2; exit 1; }
    done
    install -d "$dest/bin" "$dest/share/man/man1" "$dest/share/bash-completion/completions" \
        "$zsh" "$dest/share/fish/vendor_completions.d"
    install -m 0755 "$bin/launcher" "$bin/pause" "$dest/bin/"
    "$bin/launcher" man "$dest/share/man/man1"
    "$bin/launcher" completion bash > "$dest/share/bash-completion/completions/launcher"
    "$bin/launcher" completion zsh > "$zsh/_launcher"
    "$bin/launcher" completion fish > "$dest/share/fish/vendor_completions.d/launcher.fish"
    echo "installed launcher and pause in $dest/bin"
    ;;
uninstall)
    # Every page `launcher man` writes is launcher.1 or launcher-COMMAND.1.
    rm -f "$dest/bin/launcher" "$dest/bin/pause" \
        "$dest/share/man/man1/launcher.1" "$dest/share/man/man1"/launcher-*.1 \
        "$dest/share/bash-completion/completions/launcher" "$zsh/_launcher" \
        "$dest/share/fish/vendor_completions.d/launcher.fish"
    echo "removed launcher and pause from $dest/bin (pods' state and data are left:" \
        "/run/launcher, /var/lib/launcher)"
    ;;
*)
    echo "usage: $0 install|uninstall BIN_DIR DESTDIR PREFIX" >&2
    exit 2
    ;;
esac

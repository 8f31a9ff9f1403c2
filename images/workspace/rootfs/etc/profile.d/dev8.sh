# dev8: user-level tools install into the home volume and survive rebuilds:
# npm -g (prefix ~/.local), pip --user and pipx (~/.local), cargo install (~/.cargo), go install (~/go).
for dir in /usr/local/go/bin /opt/node/bin "$HOME/go/bin" "$HOME/.cargo/bin" "$HOME/.local/bin"; do
    case ":$PATH:" in *":$dir:"*) ;; *) PATH="$dir:$PATH" ;; esac
done
export PATH
# A line at login when the agent has something to report (failed package restore, full disk).
if [ -n "${PS1:-}" ] && [ -s /run/dev8/motd ]; then
    cat /run/dev8/motd
fi

#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter, or explains how to get one.
# Rasa Open Source 3.6 runs on Python 3.8-3.10 only; vetbot uses 3.10.
set -u
is310() { [ -n "$1" ] && [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }
if [ -n "${VETBOT_PYTHON:-}" ]; then
  is310 "$VETBOT_PYTHON" && { echo "$VETBOT_PYTHON"; exit 0; }
  echo "VETBOT_PYTHON=$VETBOT_PYTHON is not a working Python 3.10." >&2; exit 1
fi
candidates=()
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for p in "$root"/versions/3.10*/bin/python3.10; do candidates+=("$p"); done
fi
for p in "$(command -v python3.10 2>/dev/null)" /usr/bin/python3.10 /usr/local/bin/python3.10; do candidates+=("$p"); done
for p in "${candidates[@]}"; do
  # pyenv shims need PYENV_VERSION when another version is pyenv's global.
  if is310 "$p"; then echo "$p"; exit 0; fi
done
cat >&2 <<'MSG'
vetbot needs Python 3.10 (Rasa Open Source 3.6 supports Python 3.8-3.10 only) and found none.
Install it, for example with pyenv:   pyenv install 3.10.13
or point VETBOT_PYTHON at a Python 3.10 interpreter:   make run VETBOT_PYTHON=/path/to/python3.10
MSG
exit 1

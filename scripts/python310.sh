#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6 needs Python < 3.11), or explains.
set -euo pipefail
candidates=(python3.10)
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
candidates+=("$root"/versions/3.10.*/bin/python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10)
for python in "${candidates[@]}"; do
  if "$python" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
    command -v "$python" || echo "$python"
    exit 0
  fi
done
echo "Python 3.10 not found: install it (e.g. 'pyenv install 3.10') or put python3.10 on PATH." >&2
exit 1

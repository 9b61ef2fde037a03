# Sourced by scripts/dev and scripts/test: make sure .venv exists with the project and its
# dev extras installed (re-installed only when pyproject.toml changes).
say() { printf '[continuum] %s\n' "$*" >&2; }
ensure_venv() {
  local py=${CONTINUUM_PYTHON:-python3.11}
  command -v "$py" >/dev/null 2>&1 || py=python3
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    say "Python 3.11 or newer is required (found $($py --version 2>&1)); set CONTINUUM_PYTHON"
    return 1
  fi
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv with $($py --version)"
    "$py" -m venv .venv
  fi
  local stamp=.venv/.continuum-installed want
  want=$(sha1sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing the project with its dev extras into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev]"
    echo "$want" > "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

# Sourced by scripts/dev and scripts/test: make sure .venv holds exactly what uv.lock pins
# (the project, linked from this checkout, with its dev extras). It re-syncs only when the
# lock, pyproject.toml or the set of package files changed.
#
# The lock is the single source of versions: uv itself is bootstrapped at the version the
# lock pins, and `uv sync --locked` refuses to run when pyproject.toml and uv.lock disagree
# (refresh with `uv lock`, or `uv lock --upgrade-package NAME` for one dependency).
say() { printf '[continuum] %s\n' "$*" >&2; }

locked_version() {  # locked_version NAME: the version uv.lock pins for a package
  awk -v want="name = \"$1\"" '$0 == want { getline; gsub(/version = |"/, ""); print; exit }' uv.lock
}

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
  local uv_version
  uv_version=$(locked_version uv)
  if [ "$(.venv/bin/uv --version 2>/dev/null | awk '{print $2}')" != "$uv_version" ]; then
    say "bootstrapping uv $uv_version (the version uv.lock pins)"
    .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$uv_version"
  fi
  # The editable install is a tree of links (one per file), so a new module needs a re-sync.
  local stamp=.venv/.continuum-synced want
  want=$( (cat uv.lock pyproject.toml; find core platforms emulator templates -type f \
    -not -path '*/__pycache__/*' | LC_ALL=C sort) | sha1sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing the locked dev environment into .venv (uv sync --locked)"
    UV_PROJECT_ENVIRONMENT=.venv UV_PYTHON_DOWNLOADS=never \
      .venv/bin/uv sync --locked --extra dev --reinstall-package continuum-cache \
      --python .venv/bin/python --quiet || {
      say "uv sync --locked failed: if pyproject.toml changed, refresh the lock with"
      say "  .venv/bin/uv lock    (then commit uv.lock)"
      return 1
    }
    echo "$want" > "$stamp"
  fi
  export PATH="$PWD/.venv/bin:$PATH"
}

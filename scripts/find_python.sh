# Sourced by the scripts: find_python 3.12 prints the path of a Python of that minor
# version that actually runs (pyenv shims exist for versions that are installed but not
# selected, and fail when called), or returns 1. Nothing is downloaded.
find_python() {
  local c
  for c in "$HOME"/.pyenv/versions/"$1".*/bin/python "$(command -v "python$1" || true)"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" -c 'import sys' >/dev/null 2>&1; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

#!/usr/bin/env bash
# Build the wheelhouse the image builds install from (a `pip install` inside a build cannot reach
# the package index, so the host downloads and builds every wheel first).
#
#   images/wheelhouse.sh [--force] [--with-test | --sdk]
#
# Output: .build/wheelhouse/*.whl and .build/wheelhouse/.stamp. The build is skipped when the stamp matches
# the sha256 of the requirement files (requirements.txt, plus requirements-test.txt with --with-test).
# --sdk builds the small wheelhouse of the sample actor images instead: images/sdk/requirements.txt
# (cloudpickle) into .build/wheelhouse-sdk, kept apart so the core image's stays as it is.
# The images' Python is Debian bookworm's 3.11: with a host Python 3.11 `pip wheel` is used; with another
# host Python, binary wheels for cp311 manylinux are downloaded instead (`pip download --only-binary`).
# The pip is the repo venv's (.venv) when there is one, else python3's.
#
# Dependencies behind environment markers are resolved for the image's Python, not the host's: redis, for
# one, needs async-timeout only on Python < 3.11.3, which the host (3.11.7) skips and the image (Debian's
# 3.11.2) needs. After `pip wheel`, the dependency tree of the wheels is walked with the image's marker
# environment and whatever is missing is added. The image's Python version is read from the base image
# when it exists, else TARGET_PY_FULL (default 3.11.2, Debian bookworm's).
set -euo pipefail
# shellcheck source=../scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

WHEELHOUSE="$ABACO_BUILD/wheelhouse"
TARGET_PY="3.11"
TARGET_PY_FULL="${TARGET_PY_FULL:-}"
BASE_IMAGE="${BASE_IMAGE:-abaco/python-base:local}"
FORCE=0
WITH_TEST=0
SDK=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        --with-test) WITH_TEST=1 ;;
        --sdk) SDK=1 ;;
        *) die "usage: $0 [--force] [--with-test | --sdk]" ;;
    esac
done

REQS=("$ABACO_ROOT/requirements.txt")
((WITH_TEST)) && REQS+=("$ABACO_ROOT/requirements-test.txt")
if ((SDK)); then
    ((WITH_TEST)) && die "--sdk and --with-test do not go together"
    WHEELHOUSE="$ABACO_BUILD/wheelhouse-sdk"
    REQS=("$ABACO_ROOT/images/sdk/requirements.txt")
fi
WHEELHOUSE_NAME="${WHEELHOUSE#"$ABACO_ROOT"/}"

host_python() {
    if [[ -x "$ABACO_ROOT/.venv/bin/python" ]]; then
        echo "$ABACO_ROOT/.venv/bin/python"
    else
        command -v python3 || die "no python3 on this machine"
    fi
}

wanted_stamp() {
    local f
    for f in "${REQS[@]}"; do
        printf '%s  %s\n' "$(sha256sum <"$f" | cut -d' ' -f1)" "$(basename "$f")"
    done
}

# A stamp covering more files (with test requirements) also covers fewer.
stamp_ok() {
    local stamp="$WHEELHOUSE/.stamp" line
    [[ -f "$stamp" ]] || return 1
    while read -r line; do
        grep -qxF "$line" "$stamp" || return 1
    done < <(wanted_stamp)
}

# The full Python version of the images (x.y.z).
target_python_full() {
    if [[ -n "$TARGET_PY_FULL" ]]; then
        echo "$TARGET_PY_FULL"
    elif docker_answers && image_exists "$BASE_IMAGE"; then
        "$DOCKER" run --rm --network none "$BASE_IMAGE" python3 -c 'import platform; print(platform.python_version())'
    else
        echo "3.11.2"
    fi
}

# missing_for_target PY DIR PYFULL REQFILE...: prints the requirements (one per line, markers dropped) that
# the image's Python needs and that no wheel in DIR provides.
missing_for_target() {
    local py="$1" dir="$2" full="$3"
    shift 3
    "$py" - "$dir" "$full" "$@" <<'PY'
import email.parser, pathlib, re, sys, zipfile
try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name, parse_wheel_filename
except ImportError:  # the copy pip carries
    from pip._vendor.packaging.markers import default_environment
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename

wheel_dir, full = pathlib.Path(sys.argv[1]), sys.argv[2]
env = default_environment()
env.update(python_full_version=full, implementation_version=full,
           python_version=".".join(full.split(".")[:2]))

wheels = {}
for whl in wheel_dir.glob("*.whl"):
    name, version, _, _ = parse_wheel_filename(whl.name)
    wheels.setdefault(name, []).append((version, whl))

def read_reqs(path, seen=set()):
    path = pathlib.Path(path).resolve()
    if path in seen:
        return []
    seen.add(path)
    out = []
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^-r\s*(\S+)|^--requirement[ =](\S+)", line)
        if m:
            out += read_reqs(path.parent / (m.group(1) or m.group(2)))
        elif not line.startswith("-"):
            out.append(Requirement(line))
    return out

def applies(req, extras):
    if req.marker is None:
        return True
    return any(req.marker.evaluate(dict(env, extra=e)) for e in (extras or {""}))

missing, done = [], set()
todo = [(r, {""}) for f in sys.argv[3:] for r in read_reqs(f)]
while todo:
    req, parent_extras = todo.pop()
    if not applies(req, parent_extras):
        continue
    name = canonicalize_name(req.name)
    key = (name, frozenset(req.extras))
    if key in done:
        continue
    done.add(key)
    found = [w for v, w in wheels.get(name, []) if req.specifier.contains(v, prereleases=True)]
    if not found:
        missing.append(str(Requirement(f"{req.name}{'[' + ','.join(sorted(req.extras)) + ']' if req.extras else ''}{req.specifier}")))
        continue
    with zipfile.ZipFile(found[0]) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        msg = email.parser.Parser().parsestr(z.read(meta).decode())
    for dep in msg.get_all("Requires-Dist") or []:
        todo.append((Requirement(dep), set(req.extras) | {""}))
print("\n".join(sorted(set(missing))))
PY
}

# Add the wheels the image's Python needs beyond the host's (see the header), until nothing is missing.
complete_for_target() {
    local py="$1" dir="$2" full missing i
    full="$(target_python_full)"
    for ((i = 0; i < 5; i++)); do
        missing="$(missing_for_target "$py" "$dir" "$full" "${REQS[@]}")"
        [[ -z "$missing" ]] && return 0
        log "adding wheels needed by the image's Python $full: $(echo "$missing" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        "$py" -m pip wheel --disable-pip-version-check --progress-bar off -w "$dir" $missing
    done
    die "wheelhouse still incomplete for Python $full: $missing"
}

main() {
    if ((!FORCE)) && stamp_ok; then
        log "wheelhouse up to date ($(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels in $WHEELHOUSE_NAME)"
        return 0
    fi
    # shellcheck disable=SC2034 # t0 is read through timer_elapsed
    local py t0 args=() pyver
    py="$(host_python)"
    if ! "$py" -m pip --version >/dev/null 2>&1; then
        [[ "$py" == /usr/bin/python3 ]] && ensure_packages python3-pip
        "$py" -m pip --version >/dev/null 2>&1 || die "$py has no pip (python3 -m ensurepip, or apt-get install python3-pip)"
    fi
    pyver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    for f in "${REQS[@]}"; do args+=(-r "$f"); done

    timer_start t0
    local tmp="$WHEELHOUSE.new"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if [[ "$pyver" == "$TARGET_PY" ]]; then
        log "building wheels for ${REQS[*]##*/} with $py (pip wheel)..."
        "$py" -m pip wheel --disable-pip-version-check --progress-bar off -w "$tmp" "${args[@]}"
    else
        log "host Python is $pyver, images use $TARGET_PY: downloading cp311 manylinux wheels..."
        "$py" -m pip download --disable-pip-version-check --progress-bar off --only-binary=:all: \
            --python-version "$TARGET_PY" --implementation cp --abi cp311 --abi abi3 --abi none \
            --platform manylinux_2_36_x86_64 --platform manylinux_2_28_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
            -d "$tmp" "${args[@]}"
    fi
    complete_for_target "$py" "$tmp"
    wanted_stamp >"$tmp/.stamp"
    # Swap in whole: no stale wheels of older pins stay behind (they would bloat every image build).
    rm -rf "$WHEELHOUSE"
    mv "$tmp" "$WHEELHOUSE"
    log "wheelhouse $WHEELHOUSE_NAME built in $(timer_elapsed t0) s: $(find "$WHEELHOUSE" -name '*.whl' | wc -l) wheels, $(du -sh "$WHEELHOUSE" | cut -f1)"
}

main

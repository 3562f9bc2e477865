#!/usr/bin/env bash
# Deploy System 1 (fast_policy) to a Jetson Orin running JetPack 6:
#   build the arm64 image -> move it to the Jetson -> run it as an isolated candidate ->
#   health-check it -> swap it in under systemd -> health-check the live stack -> roll back on failure.
# The running stack keeps running until the new image has passed its health check.
#
#   scripts/deploy_jetson.sh [options] HOST            (HOST: anything ssh accepts, e.g. nvidia@orin.local)
#     --build buildx|remote|none   buildx: cross-build here (default); remote: build natively on the
#                                  Jetson from `git archive HEAD`; none: use the local image as is
#     --image REF                  local image to deploy (default s1s2/jetson:latest)
#     --registry PREFIX            push to PREFIX/s1s2-jetson:TAG and pull on the Jetson instead of
#                                  `docker save | ssh docker load`
#     --timeout S                  seconds to wait for each health check (default 600: a first
#                                  TensorRT engine build takes minutes on an Orin)
#     --dry-run                    print the steps, run nothing
# Environment: SSH (default "ssh -o BatchMode=yes -o ConnectTimeout=10"), DOCKER (default "docker"),
# REMOTE_DIR (/opt/s1s2), SYSTEMD_DIR (/etc/systemd/system), NV_TEGRA_RELEASE (/etc/nv_tegra_release),
# SUDO (default "sudo" on the Jetson), S1S2_EXPECT_PROVIDER, S1S2_MIN_RATE (45).
set -euo pipefail
cd "$(dirname "$0")/.."

SSH=${SSH:-ssh -o BatchMode=yes -o ConnectTimeout=10}
DOCKER=${DOCKER:-docker}
SUDO=${SUDO-sudo}
REMOTE_DIR=${REMOTE_DIR:-/opt/s1s2}
SYSTEMD_DIR=${SYSTEMD_DIR:-/etc/systemd/system}
NV_TEGRA_RELEASE=${NV_TEGRA_RELEASE:-/etc/nv_tegra_release}
MIN_RATE=${S1S2_MIN_RATE:-45}
EXPECT_PROVIDER=${S1S2_EXPECT_PROVIDER-TensorrtExecutionProvider}
REPO=s1s2/jetson                      # tags on the Jetson: candidate, current, previous
LIVE=s1s2-fast-policy
CANDIDATE=s1s2-fast-policy-candidate
UNIT=s1s2-robot.service

BUILD=buildx IMAGE=s1s2/jetson:latest REGISTRY="" TIMEOUT=600 DRY_RUN=0 HOST=""

die() { # die WHAT WHAT_TO_DO
  echo "[deploy] ERROR: $1" >&2
  [ -n "${2:-}" ] && echo "[deploy]   -> $2" >&2
  exit 1
}
log() { echo "[deploy] $*"; }
usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=${2:?--build needs buildx, remote or none}; shift 2 ;;
    --image) IMAGE=${2:?--image needs a reference}; shift 2 ;;
    --registry) REGISTRY=${2:?--registry needs a prefix}; shift 2 ;;
    --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" "see the usage above" ;;
    *) [ -z "$HOST" ] || die "two hosts given: $HOST and $1" "deploy to one Jetson at a time"; HOST=$1; shift ;;
  esac
done
[ -n "$HOST" ] || { usage >&2; die "no HOST given" "scripts/deploy_jetson.sh [options] user@jetson"; }
case $BUILD in buildx | remote | none) ;; *) die "--build $BUILD: unknown" "use buildx, remote or none" ;; esac
case $TIMEOUT in '' | *[!0-9]*) die "--timeout $TIMEOUT is not a whole number of seconds" "e.g. --timeout 600" ;; esac

# shellcheck disable=SC2086  # SSH / DOCKER are command lines on purpose (overridable)
remote() { $SSH "$HOST" "$@"; }
# shellcheck disable=SC2086
local_docker() { $DOCKER "$@"; }
step() { # step DESCRIPTION: in --dry-run print it and tell the caller to skip the work
  log "step: $1"
  [ "$DRY_RUN" = 0 ]
}

# ---- 1. the host: reachable, arm64, a Jetson on L4T r36 (JetPack 6), docker + compose ------------
if step "check $HOST: ssh, arm64, JetPack 6 (L4T r36), docker compose"; then
  if ! err=$(remote true 2>&1); then
    die "cannot reach $HOST over ssh: ${err:-no output}" \
      "check the address and network, and that key login works: ssh-copy-id $HOST"
  fi
  arch=$(remote uname -m)
  [ "$arch" = aarch64 ] || die "$HOST is $arch, not an arm64 Jetson" \
    "System 1 targets the Jetson; for an x86_64 server use deploy/compose.server.yaml (docs/deploy.md)"
  l4t=$(remote cat "$NV_TEGRA_RELEASE" 2>/dev/null || true)
  case $l4t in
    *"R36 "*) ;;
    "") die "$HOST has no $NV_TEGRA_RELEASE: not a Jetson with JetPack" "flash JetPack 6 first (docs/deploy.md, step 1)" ;;
    *) die "$HOST runs L4T '${l4t%%,*}', not r36 (JetPack 6)" "reflash with JetPack 6.1/6.2 (docs/deploy.md, step 1)" ;;
  esac
  remote docker compose version >/dev/null 2>&1 || die "docker compose is not usable on $HOST" \
    "install docker and the compose plugin, add the NVIDIA runtime (docs/deploy.md, step 2)"
fi

# ---- 2. the image: built for arm64 and present where it will be moved from ------------------------
case $BUILD in
  buildx)
    if step "build $IMAGE for linux/arm64 with docker buildx"; then
      local_docker buildx build --platform linux/arm64 -f docker/jetson.Dockerfile -t "$IMAGE" --load . ||
        die "docker buildx build failed" "see the output above; 'docker buildx ls' must list linux/arm64 (install qemu binfmt)"
    fi ;;
  remote)
    if step "copy the sources (git archive HEAD) to $HOST:$REMOTE_DIR/src and build natively"; then
      git archive --format=tar HEAD | remote "rm -rf $REMOTE_DIR/src && mkdir -p $REMOTE_DIR/src && tar -x -C $REMOTE_DIR/src" ||
        die "could not copy the sources to $HOST:$REMOTE_DIR/src" "check disk space and write access to $REMOTE_DIR"
      remote docker build -f "$REMOTE_DIR/src/docker/jetson.Dockerfile" -t "$REPO:candidate" "$REMOTE_DIR/src" ||
        die "docker build on $HOST failed" "see the output above"
    fi ;;
esac
if [ "$BUILD" != remote ] && step "check that $IMAGE exists here and is linux/arm64, tag it $REPO:candidate, move it to $HOST"; then
  platform=$(local_docker image inspect --format '{{.Os}}/{{.Architecture}}' "$IMAGE" 2>/dev/null) ||
    die "image $IMAGE not found locally" "build it: scripts/deploy_jetson.sh --build buildx $HOST (or pass --image REF)"
  [ "$platform" = linux/arm64 ] || die "image $IMAGE is $platform but $HOST is linux/arm64" \
    "rebuild for the Jetson: docker buildx build --platform linux/arm64 -f docker/jetson.Dockerfile ..., or --build remote"
  local_docker tag "$IMAGE" "$REPO:candidate"
  if [ -n "$REGISTRY" ]; then
    ref=$REGISTRY/s1s2-jetson:candidate
    { local_docker tag "$IMAGE" "$ref" && local_docker push "$ref"; } || die "docker push $ref failed" "docker login to $REGISTRY"
    { remote docker pull "$ref" && remote docker tag "$ref" "$REPO:candidate"; } ||
      die "$HOST could not pull $ref" "docker login on $HOST, or deploy without --registry"
  else
    # shellcheck disable=SC2086
    $DOCKER save "$REPO:candidate" | remote docker load ||
      die "moving the image to $HOST failed (docker save | ssh docker load)" "check disk space on $HOST: docker system df"
  fi
fi
if step "check $REPO:candidate on $HOST is linux/arm64"; then
  platform=$(remote docker image inspect --format "'{{.Os}}/{{.Architecture}}'" "$REPO:candidate" 2>/dev/null) ||
    die "image $REPO:candidate is missing on $HOST" "run again with --build buildx or --build remote"
  [ "$platform" = linux/arm64 ] || die "image $REPO:candidate on $HOST is $platform, not linux/arm64" "rebuild for arm64"
fi

# ---- 3. the deployment files: compose, candidate override, env (kept if present), systemd unit ----
if step "install deploy/compose.robot*.yaml, robot.env (first time only) and $UNIT on $HOST"; then
  remote "$SUDO mkdir -p $REMOTE_DIR/deploy" || die "cannot create $REMOTE_DIR/deploy on $HOST" "the ssh user needs sudo"
  for f in compose.robot.yaml compose.robot.candidate.yaml; do
    remote "$SUDO tee $REMOTE_DIR/deploy/$f >/dev/null" <"deploy/$f"
  done
  remote "test -f $REMOTE_DIR/deploy/robot.env || $SUDO tee $REMOTE_DIR/deploy/robot.env >/dev/null" <deploy/robot.env
  remote "$SUDO tee $SYSTEMD_DIR/$UNIT >/dev/null" <"deploy/systemd/$UNIT"
  remote "$SUDO systemctl daemon-reload"
fi

compose() { # compose PROJECT [FILES...] -- ARGS: docker compose on the Jetson, in REMOTE_DIR/deploy
  local project=$1 files=""
  shift
  while [ "$1" != -- ]; do files="$files -f $1"; shift; done
  shift
  remote "cd $REMOTE_DIR/deploy && docker compose -p $project$files --env-file robot.env $*"
}

health() { # health CONTAINER: READY marker, provider line, then the in-container diagnostics check
  local name=$1 deadline=$((SECONDS + TIMEOUT)) out=""
  while [ $SECONDS -lt $deadline ]; do
    running=$(remote docker inspect --format "'{{.State.Running}}'" "$name" 2>/dev/null || echo missing)
    if [ "$running" != true ]; then
      log "health: $name is not running ($running)"
      return 1
    fi
    if remote docker logs "$name" 2>&1 | grep -q '\[s1s2\] READY fast_policy'; then
      if out=$(remote docker exec "$name" python3 /opt/s1s2/docker/healthcheck.py \
        --min-rate "$MIN_RATE" --expect-provider "'$EXPECT_PROVIDER'" 2>&1); then
        log "health: $name healthy: ${out%%$'\n'*}"
        return 0
      fi
      log "health: $name: ${out%%$'\n'*}"
      [ "${out#*no fast_policy diagnostics}" != "$out" ] || return 1 # a wrong value will not improve
    fi
    sleep 5
  done
  log "health: $name not healthy within ${TIMEOUT}s${out:+: ${out%%$'\n'*}}"
  return 1
}

# ---- 4. the candidate: new image, isolated (no network), health-checked next to the live stack ----
if step "start the candidate $CANDIDATE (no network) from $REPO:candidate and health-check it"; then
  compose s1s2-candidate compose.robot.yaml compose.robot.candidate.yaml -- down >/dev/null 2>&1 || true
  compose s1s2-candidate compose.robot.yaml compose.robot.candidate.yaml -- up -d --no-deps fast_policy ||
    die "the candidate container did not start" "see: ssh $HOST docker logs $CANDIDATE"
  if ! health "$CANDIDATE"; then
    remote docker logs --tail 30 "$CANDIDATE" >&2 || true
    compose s1s2-candidate compose.robot.yaml compose.robot.candidate.yaml -- down >/dev/null 2>&1 || true
    die "the new image failed its health check; the running stack on $HOST was not touched" \
      "read the candidate's log above (provider, warm-up, rate); fix and deploy again"
  fi
  compose s1s2-candidate compose.robot.yaml compose.robot.candidate.yaml -- down >/dev/null 2>&1 || true
fi

# ---- 5. swap: current -> previous, candidate -> current, restart the unit; roll back on failure ---
if step "swap: tag $REPO:current as $REPO:previous, $REPO:candidate as $REPO:current, restart $UNIT, health-check"; then
  had_previous=0
  if remote docker image inspect "$REPO:current" >/dev/null 2>&1; then
    remote docker tag "$REPO:current" "$REPO:previous"
    had_previous=1
  fi
  remote docker tag "$REPO:candidate" "$REPO:current"
  remote "$SUDO systemctl enable $UNIT >/dev/null 2>&1; $SUDO systemctl restart $UNIT"
  if ! health "$LIVE"; then
    remote docker logs --tail 30 "$LIVE" >&2 || true
    if [ $had_previous = 1 ]; then
      log "rolling back to $REPO:previous"
      remote docker tag "$REPO:previous" "$REPO:current"
      remote "$SUDO systemctl restart $UNIT"
      health "$LIVE" || die "the new stack failed on $HOST and so did the rollback" \
        "inspect: ssh $HOST journalctl -u $UNIT; docker logs $LIVE"
      die "the new stack failed its health check on $HOST; rolled back to the previous image (healthy)" \
        "read the log above; the candidate passed in isolation, so check robot.env (DDS addresses)"
    fi
    die "the new stack failed its health check on $HOST and there was no previous image to roll back to" \
      "inspect: ssh $HOST journalctl -u $UNIT; docker logs $LIVE"
  fi
fi
if [ "$DRY_RUN" = 1 ]; then
  log "dry run: nothing was changed"
else
  log "done: $HOST runs $REPO:current under $UNIT"
fi

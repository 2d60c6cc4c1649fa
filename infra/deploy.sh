#!/usr/bin/env bash
# Build, push and deploy the Zendesk sidebar assistant to Cloud Run; see docs/deploy.md.
#
#   infra/deploy.sh [--dry-run] [--skip-infra] [--skip-build]
#   infra/deploy.sh [--dry-run] --rollback REVISION
#
# Steps: Terraform (infra/terraform) -> check secrets have values -> build + push the image
# (Cloud Build, or BUILDER=docker) -> render infra/cloudrun/service.yaml -> gcloud run services
# replace -> smoke-check /readyz. --dry-run prints every command instead of running it (the
# service.yaml is still rendered, locally, so it can be inspected).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$ROOT/infra/terraform"
SERVICE_TEMPLATE="$ROOT/infra/cloudrun/service.yaml"

DRY_RUN=0
SKIP_INFRA=0
SKIP_BUILD=0
ROLLBACK=""

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Required variables:
  PROJECT_ID            Google Cloud project
  REGION                Cloud Run / Memorystore / Artifact Registry region, e.g. us-central1
  TF_STATE_BUCKET       GCS bucket for Terraform state (not needed with --skip-infra/--rollback)
  PUBLIC_URL            https URL the sidebar loads the service from (the Cloud Run URL or a domain)
  CORS_ALLOWED_ORIGINS  comma-separated origins of the Zendesk app iframe
  COMMERCE_API_URL      order/product API base URL
Optional:
  SERVICE_NAME=sidebar-assistant  IMAGE_TAG=<git short sha>  MIN_INSTANCES=1  MAX_INSTANCES=10
  SPANNER_DATABASE=sidebar  VERTEX_LOCATION=$REGION  GEMINI_MODEL=gemini-3.5-flash-lite
  GEMINI_THINKING_LEVEL=minimal  (minimal|low|medium|high|default; what the model accepts)
  EMBEDDING_DIMENSIONS=768  (Spanner Embedding column width = what the service asks Vertex for)
  RENDERED_SCHEMA=<path for the rendered Spanner schema>
  BUILDER=cloudbuild|docker  AUTO_APPROVE=0|1  ALLOW_UNAUTHENTICATED=1|0
  RENDERED_SERVICE=<path for the rendered service.yaml>
EOF
}

die() {
  echo "deploy.sh: $*" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --skip-infra) SKIP_INFRA=1 ;;
    --skip-build) SKIP_BUILD=1 ;;
    --rollback)
      [[ $# -ge 2 ]] || die "--rollback needs a revision name"
      ROLLBACK="$2"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
  shift
done

# --- configuration --------------------------------------------------------------------------
SERVICE_NAME="${SERVICE_NAME:-sidebar-assistant}"
MIN_INSTANCES="${MIN_INSTANCES:-1}"
MAX_INSTANCES="${MAX_INSTANCES:-10}"
SPANNER_DATABASE="${SPANNER_DATABASE:-sidebar}"
EMBEDDING_DIMENSIONS="${EMBEDDING_DIMENSIONS:-768}"
# A current GA model (gemini-2.5-flash was retired on 2026-10-16: docs/vertex_interface.md).
GEMINI_MODEL="${GEMINI_MODEL:-gemini-3.5-flash-lite}"
GEMINI_THINKING_LEVEL="${GEMINI_THINKING_LEVEL:-minimal}"
BUILDER="${BUILDER:-cloudbuild}"
AUTO_APPROVE="${AUTO_APPROVE:-0}"
ALLOW_UNAUTHENTICATED="${ALLOW_UNAUTHENTICATED:-1}"

required=(PROJECT_ID REGION)
if [[ -z "$ROLLBACK" ]]; then
  required+=(PUBLIC_URL CORS_ALLOWED_ORIGINS COMMERCE_API_URL)
  [[ "$SKIP_INFRA" == 1 ]] || required+=(TF_STATE_BUCKET)
fi
missing=()
for name in "${required[@]}"; do
  [[ -n "${!name:-}" ]] || missing+=("$name")
done
[[ ${#missing[@]} -eq 0 ]] || die "missing required variables: ${missing[*]} (see --help)"

VERTEX_LOCATION="${VERTEX_LOCATION:-$REGION}"
if [[ -z "${IMAGE_TAG:-}" ]]; then
  IMAGE_TAG="$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)"
fi

# Values are substituted into YAML and shell commands: allow only plain URL/identifier text.
check() {
  local name="$1" pattern="$2"
  [[ "${!name}" =~ $pattern ]] || die "invalid $name: ${!name@Q} (must match $pattern)"
}
check PROJECT_ID '^[a-z][a-z0-9-]{4,28}[a-z0-9]$'
check REGION '^[a-z]+-[a-z]+[0-9]$'
check SERVICE_NAME '^[a-z][a-z0-9-]{2,22}[a-z0-9]$'
check MIN_INSTANCES '^[0-9]+$'
check MAX_INSTANCES '^[1-9][0-9]*$'
((MIN_INSTANCES <= MAX_INSTANCES)) || die "MIN_INSTANCES ($MIN_INSTANCES) > MAX_INSTANCES ($MAX_INSTANCES)"
check IMAGE_TAG '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$'
check SPANNER_DATABASE '^[a-z][a-z0-9_-]{1,28}[a-z0-9]$'
check EMBEDDING_DIMENSIONS '^[1-9][0-9]{0,3}$'
((EMBEDDING_DIMENSIONS <= 3072)) || die "EMBEDDING_DIMENSIONS ($EMBEDDING_DIMENSIONS) > 3072 (gemini-embedding-001's maximum)"
check VERTEX_LOCATION '^[a-z]+(-[a-z]+[0-9])?$'
check GEMINI_MODEL '^[A-Za-z0-9._-]+$'
check GEMINI_THINKING_LEVEL '^(minimal|low|medium|high|default)$'
check BUILDER '^(cloudbuild|docker)$'
if [[ -z "$ROLLBACK" ]]; then
  check PUBLIC_URL '^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$'
  check CORS_ALLOWED_ORIGINS '^(\*|https://[A-Za-z0-9.:-]+(,https://[A-Za-z0-9.:-]+)*)$'
  check COMMERCE_API_URL '^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~/-]*)?$'
  [[ "$SKIP_INFRA" == 1 ]] || check TF_STATE_BUCKET '^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$'
else
  check ROLLBACK '^[a-z][a-z0-9-]{0,62}$'
fi

# Names Terraform derives from var.service_name (infra/terraform); checked against its outputs.
# Some are only read through ${!name} in render_service, which shellcheck cannot follow.
SERVICE_ACCOUNT="${SERVICE_NAME}-run@${PROJECT_ID}.iam.gserviceaccount.com"
REPOSITORY="${REGION}-docker.pkg.dev/${PROJECT_ID}/${SERVICE_NAME}"
IMAGE="${REPOSITORY}/${SERVICE_NAME}:${IMAGE_TAG}"
# shellcheck disable=SC2034
NETWORK="${SERVICE_NAME}-vpc"
# shellcheck disable=SC2034
SUBNET="${SERVICE_NAME}-run"
# shellcheck disable=SC2034
SPANNER_INSTANCE="${SERVICE_NAME}"
MANUAL_SECRETS=("${SERVICE_NAME}-secret-key" "${SERVICE_NAME}-commerce-api-key" "${SERVICE_NAME}-zendesk-tenants")
GCLOUD_SCOPE=(--project "$PROJECT_ID" --region "$REGION")

# --- helpers ----------------------------------------------------------------------------------
run() {
  if [[ "$DRY_RUN" == 1 ]]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

step() { printf '\n==> %s\n' "$*"; }

need() {
  [[ "$DRY_RUN" == 1 ]] && return 0
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null || die "$tool is required (not found on PATH)"
  done
}

render_service() {
  local out="$1" name value rendered
  rendered="$(cat "$SERVICE_TEMPLATE")"
  for name in SERVICE_NAME REGION MIN_INSTANCES MAX_INSTANCES NETWORK SUBNET SERVICE_ACCOUNT IMAGE \
    PUBLIC_URL CORS_ALLOWED_ORIGINS PROJECT_ID SPANNER_INSTANCE SPANNER_DATABASE VERTEX_LOCATION \
    GEMINI_MODEL GEMINI_THINKING_LEVEL EMBEDDING_DIMENSIONS COMMERCE_API_URL; do
    value="${!name}"
    rendered="${rendered//"\${$name}"/"$value"}"
  done
  # shellcheck disable=SC2016  # a literal "${" is what is searched for
  if grep -q '\${' <<<"$rendered"; then
    die "unfilled placeholders in $SERVICE_TEMPLATE: $(grep -o '\${[A-Z_]*}' <<<"$rendered" | sort -u | tr '\n' ' ')"
  fi
  printf '%s\n' "$rendered" >"$out"
}

# The Spanner schema for EMBEDDING_DIMENSIONS (ddl.py needs only python3's standard library).
render_schema() {
  command -v python3 >/dev/null || die "python3 is required to render the Spanner schema"
  python3 "$ROOT/store/spanner/ddl.py" "$EMBEDDING_DIMENSIONS" >"$1" || die "rendering the Spanner schema failed"
}

# Spanner recommends creating a vector index "after most of the rows with embeddings are
# written": so not with the database (an empty table), but on the first deploy after an ingest.
ensure_vector_index() {
  local scope=(--instance "$SPANNER_INSTANCE" --project "$PROJECT_ID") first_cell rows existing ddl
  first_cell='import json, sys
try:
    print(int(json.load(sys.stdin)["rows"][0][0]))
except Exception:
    print(-1)'
  local count_sql="SELECT COUNT(*) FROM KnowledgeChunks"
  local index_sql="SELECT COUNT(*) FROM INFORMATION_SCHEMA.INDEXES WHERE TABLE_SCHEMA = '' AND INDEX_NAME = 'KnowledgeChunksEmbedding'"
  if [[ "$DRY_RUN" == 1 ]]; then
    run gcloud spanner databases execute-sql "$SPANNER_DATABASE" "${scope[@]}" --sql "$index_sql" --format json
    run gcloud spanner databases execute-sql "$SPANNER_DATABASE" "${scope[@]}" --sql "$count_sql" --format json
    run gcloud spanner databases ddl update "$SPANNER_DATABASE" "${scope[@]}" --async \
      --ddl "<python3 store/spanner/ddl.py --vector-index ROWS>"
    return 0
  fi
  existing="$(gcloud spanner databases execute-sql "$SPANNER_DATABASE" "${scope[@]}" --sql "$index_sql" --format json |
    python3 -c "$first_cell")"
  if [[ "$existing" -gt 0 ]]; then
    echo "vector index KnowledgeChunksEmbedding exists"
    return 0
  fi
  rows="$(gcloud spanner databases execute-sql "$SPANNER_DATABASE" "${scope[@]}" --sql "$count_sql" --format json |
    python3 -c "$first_cell")"
  if [[ "$rows" -le 0 ]]; then
    echo "no knowledge chunks yet: searches stay exact; ingest, then deploy again to create the vector index" >&2
    return 0
  fi
  ddl="$(python3 "$ROOT/store/spanner/ddl.py" --vector-index "$rows" | tr -s '\n ' '  ')"
  gcloud spanner databases ddl update "$SPANNER_DATABASE" "${scope[@]}" --async --ddl "$ddl"
  echo "vector index KnowledgeChunksEmbedding requested for $rows rows (builds in the background)"
}

smoke_check() {
  step "smoke check: /readyz"
  if [[ "$DRY_RUN" == 1 ]]; then
    run gcloud run services describe "$SERVICE_NAME" "${GCLOUD_SCOPE[@]}" --format 'value(status.url)'
    run curl -fsS --max-time 5 "<service-url>/readyz"
    return 0
  fi
  local url attempt
  url="$(gcloud run services describe "$SERVICE_NAME" "${GCLOUD_SCOPE[@]}" --format 'value(status.url)')"
  [[ -n "$url" ]] || die "service $SERVICE_NAME has no URL"
  for attempt in $(seq 1 30); do
    if curl -fsS --max-time 5 "$url/readyz"; then
      printf '\n%s is ready: %s\n' "$SERVICE_NAME" "$url"
      return 0
    fi
    echo " (attempt $attempt: not ready yet)" >&2
    sleep 5
  done
  die "$url/readyz did not answer 200; roll back with: $0 --rollback <previous revision>"
}

# --- rollback ---------------------------------------------------------------------------------
if [[ -n "$ROLLBACK" ]]; then
  need gcloud curl
  step "rollback: all traffic to $ROLLBACK"
  run gcloud run services update-traffic "$SERVICE_NAME" "${GCLOUD_SCOPE[@]}" --to-revisions "$ROLLBACK=100"
  smoke_check
  exit 0
fi

need gcloud curl
mode="$([[ "$DRY_RUN" == 1 ]] && echo "dry run: printing commands" || echo "running")"
echo "deploying $SERVICE_NAME to $PROJECT_ID/$REGION, image $IMAGE ($mode)"

# --- 1. infrastructure --------------------------------------------------------------------------
if [[ "$SKIP_INFRA" == 0 ]]; then
  need terraform
  step "1/6 infrastructure: terraform apply (infra/terraform)"
  RENDERED_SCHEMA="${RENDERED_SCHEMA:-$(mktemp -d)/schema.sql}"
  render_schema "$RENDERED_SCHEMA"
  echo "Spanner schema for $EMBEDDING_DIMENSIONS-dimensional embeddings: $RENDERED_SCHEMA"
  tf_vars=(-var "project_id=$PROJECT_ID" -var "region=$REGION" -var "service_name=$SERVICE_NAME"
    -var "spanner_database=$SPANNER_DATABASE" -var "embedding_dimensions=$EMBEDDING_DIMENSIONS"
    -var "spanner_schema_file=$RENDERED_SCHEMA")
  approve=()
  [[ "$AUTO_APPROVE" == 1 ]] && approve=(-auto-approve)
  run terraform -chdir="$TF_DIR" init -input=false -backend-config="bucket=$TF_STATE_BUCKET"
  run terraform -chdir="$TF_DIR" apply -input=false "${approve[@]}" "${tf_vars[@]}"
  if [[ "$DRY_RUN" == 0 ]]; then
    actual="$(terraform -chdir="$TF_DIR" output -raw service_account_email)"
    [[ "$actual" == "$SERVICE_ACCOUNT" ]] || die "Terraform's service account $actual != expected $SERVICE_ACCOUNT"
  fi
else
  step "1/6 infrastructure: skipped (--skip-infra)"
fi
step "1b/6 Spanner vector index (once the knowledge table has rows)"
ensure_vector_index

# --- 2. secrets must have a value before a revision can start ----------------------------------
step "2/6 secrets: each must have a version"
for secret in "${MANUAL_SECRETS[@]}"; do
  check_cmd=(gcloud secrets versions describe latest --secret "$secret" --project "$PROJECT_ID" --format 'value(state)')
  if [[ "$DRY_RUN" == 1 ]]; then
    run "${check_cmd[@]}"
  elif [[ "$("${check_cmd[@]}" 2>/dev/null)" != ENABLED ]]; then
    die "secret $secret has no enabled version; add one (docs/deploy.md, 'One-time setup')"
  fi
done

# --- 3. image -----------------------------------------------------------------------------------
if [[ "$SKIP_BUILD" == 0 ]]; then
  step "3/6 image: build and push $IMAGE ($BUILDER)"
  if [[ "$BUILDER" == cloudbuild ]]; then
    run gcloud builds submit "$ROOT" --project "$PROJECT_ID" --region "$REGION" --tag "$IMAGE"
  else
    need docker
    run docker build --pull -t "$IMAGE" "$ROOT"
    run docker push "$IMAGE"
  fi
else
  step "3/6 image: skipped (--skip-build), deploying existing $IMAGE"
fi

# --- 4. service definition ----------------------------------------------------------------------
RENDERED_SERVICE="${RENDERED_SERVICE:-$(mktemp -d)/service.yaml}"
step "4/6 render infra/cloudrun/service.yaml -> $RENDERED_SERVICE"
render_service "$RENDERED_SERVICE"

# --- 5. deploy ----------------------------------------------------------------------------------
step "5/6 deploy: new revision of $SERVICE_NAME"
run gcloud run services replace "$RENDERED_SERVICE" "${GCLOUD_SCOPE[@]}"
if [[ "$ALLOW_UNAUTHENTICATED" == 1 ]]; then
  # The Zendesk iframe cannot send Google credentials; the app authenticates every connection.
  run gcloud run services add-iam-policy-binding "$SERVICE_NAME" "${GCLOUD_SCOPE[@]}" \
    --member allUsers --role roles/run.invoker
fi

# --- 6. smoke check -----------------------------------------------------------------------------
smoke_check

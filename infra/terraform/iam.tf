# The runtime identity of the Cloud Run service, with only what the assistant does:
# read/write its one Spanner database, call Vertex AI, read its own secrets, write logs,
# metrics and traces. Redis access is by network (the VPC), not IAM.
resource "google_service_account" "run" {
  account_id   = "${local.name}-run"
  display_name = "Zendesk sidebar assistant (Cloud Run runtime)"
}

locals {
  run_member = "serviceAccount:${google_service_account.run.email}"
  project_roles = [
    "roles/aiplatform.user",         # Gemini generation + embeddings
    "roles/logging.logWriter",       # JSON logs
    "roles/monitoring.metricWriter", # metrics
    "roles/cloudtrace.agent",        # optional OpenTelemetry traces
  ]
}

resource "google_project_iam_member" "run" {
  for_each = toset(local.project_roles)
  project  = var.project_id
  role     = each.value
  member   = local.run_member
}

# Scoped to the database, not the project: no access to other Spanner databases.
resource "google_spanner_database_iam_member" "run" {
  instance = google_spanner_instance.main.name
  database = google_spanner_database.main.name
  role     = "roles/spanner.databaseUser"
  member   = local.run_member
}

# Scoped to each named secret, not the project.
resource "google_secret_manager_secret_iam_member" "run" {
  for_each  = google_secret_manager_secret.app
  secret_id = each.value.id
  role      = "roles/secretmanager.secretAccessor"
  member    = local.run_member
}

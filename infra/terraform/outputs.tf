# infra/deploy.sh derives the same names from SERVICE_NAME and checks them against these.
output "service_account_email" {
  value = google_service_account.run.email
}

output "image_repository" {
  value = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "network" {
  value = google_compute_network.vpc.name
}

output "subnetwork" {
  value = google_compute_subnetwork.run.name
}

output "spanner_instance" {
  value = google_spanner_instance.main.name
}

output "spanner_database" {
  value = google_spanner_database.main.name
}

output "redis_host" {
  value = google_redis_instance.sessions.host
}

output "secret_ids" {
  value = { for k, s in google_secret_manager_secret.app : k => s.secret_id }
}

# Secret Manager: the service reads these by reference (valueFrom.secretKeyRef / a secret
# volume); their values never appear in service.yaml. Terraform creates the containers;
# values are added out of band (`gcloud secrets versions add`, see docs/deploy.md), so they
# stay out of Terraform state. The Redis URL is the exception: it is derived from Memorystore.
locals {
  secrets = {
    secret_key       = "${local.name}-secret-key"       # SECRET_KEY
    redis_url        = "${local.name}-redis-url"        # REDIS_URL (contains the AUTH string)
    commerce_api_key = "${local.name}-commerce-api-key" # COMMERCE_API_KEY
    zendesk_tenants  = "${local.name}-zendesk-tenants"  # file at ZENDESK_TENANTS_FILE
  }
}

resource "google_secret_manager_secret" "app" {
  for_each  = local.secrets
  secret_id = each.value
  replication {
    auto {}
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.app["redis_url"].id
  secret_data = "redis://:${google_redis_instance.sessions.auth_string}@${google_redis_instance.sessions.host}:${google_redis_instance.sessions.port}/0"
}

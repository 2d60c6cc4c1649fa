# Everything the Cloud Run service needs, except the service itself: infra/deploy.sh deploys
# infra/cloudrun/service.yaml with `gcloud run services replace` once this is applied.
# Names are derived from var.service_name only, so deploy.sh can compute them too.

locals {
  name = var.service_name
  apis = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "spanner.googleapis.com",
  ]
}

resource "google_project_service" "apis" {
  for_each           = toset(local.apis)
  service            = each.value
  disable_on_destroy = false
}

# --- container images ------------------------------------------------------------------------
resource "google_artifact_registry_repository" "images" {
  repository_id = local.name
  location      = var.region
  format        = "DOCKER"
  description   = "Images of the Zendesk sidebar assistant."
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20 # enough revisions to roll back to
    }
  }
  depends_on = [google_project_service.apis]
}

# --- network: Cloud Run reaches Memorystore through Direct VPC egress into this subnet --------
resource "google_compute_network" "vpc" {
  name                    = "${local.name}-vpc"
  auto_create_subnetworks = false
  depends_on              = [google_project_service.apis]
}

resource "google_compute_subnetwork" "run" {
  name                     = "${local.name}-run"
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true # Spanner, Vertex AI and Secret Manager without public egress
}

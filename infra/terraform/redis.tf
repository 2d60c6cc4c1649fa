# Memorystore Redis: live sessions, the Socket.IO message queue and instance heartbeats.
# Reachable only from the VPC (no public IP); AUTH on, the URL with the AUTH string is a secret.
resource "google_redis_instance" "sessions" {
  name                    = "${local.name}-redis"
  region                  = var.region
  tier                    = var.redis_tier
  memory_size_gb          = var.redis_memory_gb
  redis_version           = "REDIS_7_2"
  authorized_network      = google_compute_network.vpc.id
  connect_mode            = "DIRECT_PEERING"
  auth_enabled            = true
  transit_encryption_mode = "DISABLED" # in-VPC only; see docs/deploy.md for enabling TLS
  redis_configs = {
    # Sessions carry their own TTLs; never evict a live one to make room.
    "maxmemory-policy" = "noeviction"
  }
  depends_on = [google_project_service.apis]
}

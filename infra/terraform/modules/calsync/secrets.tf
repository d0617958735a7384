/**
 * Secret Manager secrets, created empty: their versions are added out of band with
 * `gcloud secrets versions add` (docs/deploy.md), so no secret value ever lands in Terraform state.
 * The optional Cloud KMS key encrypts stored OAuth refresh tokens in prod.
 */

resource "google_secret_manager_secret" "this" {
  for_each = local.created_secrets

  project   = var.project_id
  secret_id = each.value
  labels    = local.labels

  replication {
    auto {}
  }
}

resource "google_kms_key_ring" "token" {
  count = var.enable_kms_token_key ? 1 : 0

  project  = var.project_id
  name     = "${local.prefix}-tokens"
  location = var.region
}

resource "google_kms_crypto_key" "token" {
  count = var.enable_kms_token_key ? 1 : 0

  name            = "${local.prefix}-token-key"
  key_ring        = google_kms_key_ring.token[0].id
  purpose         = "ENCRYPT_DECRYPT"
  rotation_period = "7776000s" # 90 days

  lifecycle {
    prevent_destroy = true
  }
}

/**
 * One HTTP Cloud Function (2nd gen) with its own runtime service account, its source uploaded
 * under an md5-derived name (so a changed zip redeploys) and run.invoker granted only to the
 * members given. Shape follows GoogleCloudPlatform/terraform-google-cloud-functions.
 */

resource "google_service_account" "this" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "calsync function ${var.name}"
  description  = "Runtime identity of the ${var.name} function; granted only what it uses."
}

resource "google_storage_bucket_object" "source" {
  name   = "${var.name}/${filemd5(var.source_zip)}.zip"
  bucket = var.source_bucket
  source = var.source_zip
}

resource "google_cloudfunctions2_function" "this" {
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = var.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = var.source_bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.this.email
    min_instance_count               = var.min_instances
    max_instance_count               = var.max_instances
    max_instance_request_concurrency = var.concurrency
    timeout_seconds                  = var.timeout_s
    available_memory                 = var.available_memory
    available_cpu                    = var.available_cpu
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    # functions-framework's gunicorn serves THREADS requests at once: as many as the instance takes.
    environment_variables = merge(var.env_vars, { THREADS = tostring(var.concurrency) })

    # Only the secret's name and version land in state; the value is read by Cloud Run at start.
    dynamic "secret_environment_variables" {
      for_each = var.secret_env_vars
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value.secret
        version    = secret_environment_variables.value.version
      }
    }
  }
}

# 2nd gen functions are Cloud Run services: invocation is roles/run.invoker on that service.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = toset(var.invoker_members)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

/**
 * Least privilege: each function's own service account gets only the roles its code uses.
 * Invoker bindings live in modules/function (invoker_members).
 */

locals {
  secret_readers = merge([
    for fn, cfg in local.functions : {
      for secret in cfg.secrets : "${fn}/${secret}" => { function = fn, secret = secret }
    }
  ]...)

  queue_enqueuers = merge([
    for fn, cfg in local.functions : {
      for queue in cfg.queues : "${fn}/${queue}" => { function = fn, queue = queue }
    }
  ]...)

  # The functions that encrypt or decrypt clinics' refresh tokens (they read the OAuth client).
  token_key_users = [for fn, cfg in local.functions : fn if contains(cfg.secrets, "oauth_client")]
}

# Firestore has no per-collection IAM, but a role binding can be conditioned on the database: the
# webhook (public, authenticated only by channel tokens) may use the push database only; the other
# functions use both of calsync's databases and no other.
resource "google_project_iam_member" "firestore_user" {
  for_each = local.functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = module.function[each.key].service_account_member

  condition {
    title       = each.key == "webhook" ? "push-database-only" : "calsync-databases-only"
    description = each.key == "webhook" ? "Channels and unknown channels only." : "calsync's state and push databases."
    expression = join(" || ", [
      for db in(each.key == "webhook" ? [google_firestore_database.push.name] : [google_firestore_database.this.name, google_firestore_database.push.name]) :
      "resource.name.startsWith(\"projects/${var.project_id}/databases/${db}\")"
    ])
  }
}

resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = local.secret_readers

  project   = var.project_id
  secret_id = google_secret_manager_secret.this[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = module.function[each.value.function].service_account_member
}

resource "google_cloud_tasks_queue_iam_member" "enqueuer" {
  for_each = local.queue_enqueuers

  project  = var.project_id
  location = var.region
  name     = each.value.queue == "sync" ? google_cloud_tasks_queue.sync.name : google_cloud_tasks_queue.publish.name
  role     = "roles/cloudtasks.enqueuer"
  member   = module.function[each.value.function].service_account_member
}

# Creating a task that carries an invoker's OIDC token needs actAs on that account: each function
# may act as the invokers of the targets it enqueues to, and no other.
resource "google_service_account_iam_member" "tasks_invoker_act_as" {
  for_each = merge([
    for fn, cfg in local.functions : { for target in cfg.task_targets : "${fn}/${target}" => { function = fn, target = target } }
  ]...)

  service_account_id = google_service_account.invoker[each.value.target].name
  role               = "roles/iam.serviceAccountUser"
  member             = module.function[each.value.function].service_account_member
}

resource "google_kms_crypto_key_iam_member" "token_key_user" {
  for_each = var.enable_kms_token_key ? toset(local.token_key_users) : toset([])

  crypto_key_id = google_kms_crypto_key.token[0].id
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = module.function[each.key].service_account_member
}

# Keyless domain-wide delegation: the calendar account has no key. The functions that call Calendar
# may sign as it (IAM Credentials signBlob) and nothing else may; the Workspace admin authorises its
# client id for the Calendar scope (docs/deploy.md). The org policy
# constraints/iam.disableServiceAccountKeyCreation keeps anyone from exporting a key later.
resource "google_service_account" "calendar" {
  project      = var.project_id
  account_id   = "${local.prefix}-calendar"
  display_name = "calsync ${var.environment} Calendar (domain-wide delegation, no key)"
}

resource "google_service_account_iam_member" "calendar_signer" {
  for_each = toset(local.calendar_callers)

  service_account_id = google_service_account.calendar.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = module.function[each.key].service_account_member
}

# Data Access audit logs for the services holding people's data and secrets, outside dev: who read or
# wrote Firestore documents and who accessed secret versions (Admin Activity logs are always on).
resource "google_project_iam_audit_config" "data_access" {
  for_each = var.environment == "dev" ? toset([]) : toset(["datastore.googleapis.com", "secretmanager.googleapis.com"])

  project = var.project_id
  service = each.key

  audit_log_config {
    log_type = "DATA_READ"
  }
  audit_log_config {
    log_type = "DATA_WRITE"
  }
}

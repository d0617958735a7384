/**
 * calsync in one Google Cloud project: the four HTTP functions (webhook, sync, renew, publish),
 * their least-privilege identities, the Cloud Tasks queues, the Cloud Scheduler jobs, Firestore,
 * the Secret Manager secrets and the monitoring. Everything an environment differs in is an input.
 */

locals {
  prefix = "calsync-${var.environment}"

  # 2nd gen functions also answer on the deterministic cloudfunctions.net address. Using it (rather
  # than each function's `url` attribute) lets every function know every URL, its own included,
  # without a dependency cycle. Google's push requires HTTPS with a valid certificate: this has one.
  function_urls = {
    for name in ["webhook", "sync", "renew", "publish"] :
    name => "https://${var.region}-${var.project_id}.cloudfunctions.net/${local.prefix}-${name}"
  }

  queue_names = {
    sync    = "${local.prefix}-sync"
    publish = "${local.prefix}-publish"
  }

  # Secrets are created empty; versions are added out of band (docs/deploy.md). Only names reach
  # the functions: the code reads the values from Secret Manager at run time.
  secrets = {
    oauth_client = "${local.prefix}-oauth-client"
    token_key    = "${local.prefix}-token-key"
    admin_token  = "${local.prefix}-admin-token"
  }

  # With Cloud KMS (enable_kms_token_key), refresh tokens are envelope-encrypted by the KMS key: the
  # local token key secret is neither created nor read.
  created_secrets  = var.enable_kms_token_key ? { for name, secret_id in local.secrets : name => secret_id if name != "token_key" } : local.secrets
  calendar_secrets = var.enable_kms_token_key ? ["oauth_client"] : ["oauth_client", "token_key"]

  # The functions that call Calendar: they sign delegation assertions as the calendar account.
  calendar_callers = ["sync", "renew", "publish"]

  # Per function: who may invoke it, where requests may come from, which secrets it reads and
  # which queues it enqueues to. Nothing else is granted.
  functions = {
    webhook = {
      entry_point = "main"
      description = "Receives Google Calendar push notifications and enqueues a per-calendar sync."
      # Google's push must reach it; it authenticates each notification by its channel token.
      ingress       = "ALLOW_ALL"
      invokers      = ["allUsers"]
      secrets       = []
      queues        = ["sync"]
      task_targets  = ["sync"]
      timeout_s     = 30
      memory        = "512Mi"
      max_instances = 20
      # I/O-bound: each request waits on a Firestore read/transaction and a Cloud Tasks call, so one
      # instance serves many at once (more than 1 needs a whole vCPU on 2nd gen functions).
      concurrency = 16
      cpu         = "1"
    }
    sync = {
      entry_point   = "main"
      description   = "Runs one calendar's incremental or full sync (Cloud Tasks target)."
      ingress       = "ALLOW_INTERNAL_ONLY" # Cloud Tasks of the project counts as internal
      invokers      = [google_service_account.invoker["sync"].member]
      secrets       = local.calendar_secrets
      queues        = ["sync"] # continues itself when a run exceeds its budget
      task_targets  = ["sync"]
      timeout_s     = 300
      memory        = "512Mi"
      max_instances = 10
      concurrency   = 1
      cpu           = "1"
    }
    renew = {
      entry_point = "main"
      description = "Renews push channels, polls calendars and cleans up (Cloud Scheduler target)."
      ingress     = "ALLOW_INTERNAL_ONLY" # Cloud Scheduler of the project counts as internal
      # The scheduler's jobs; plus the renewal fan-out tasks (Settings.renew_queue) Cloud Tasks
      # delivers back to renew when more channels are due than renew_inline_max.
      invokers = [google_service_account.scheduler.member, google_service_account.invoker["renew"].member]
      # Renewing a connected clinic's channels acts as the clinic's account (its OAuth token).
      secrets       = local.calendar_secrets
      queues        = ["sync"]
      task_targets  = ["sync", "renew"]
      timeout_s     = 540
      memory        = "512Mi"
      max_instances = 2
      concurrency   = 1
      cpu           = "1"
    }
    publish = {
      entry_point = "main"
      description = "Plans and applies publishes of allocations to Google Calendar."
      # Admins call it from their machines with an ID token; the publish queue calls it back.
      ingress       = "ALLOW_ALL"
      invokers      = ["group:${var.admin_group}", google_service_account.invoker["publish"].member]
      secrets       = concat(local.calendar_secrets, ["admin_token"])
      queues        = ["publish", "sync"]
      task_targets  = ["publish", "sync"]
      timeout_s     = 540
      memory        = "512Mi"
      max_instances = 2
      concurrency   = 1
      cpu           = "1"
    }
  }

  # Every CALSYNC_* variable the Settings class reads without a default is set here (and checked
  # by tests/infra against calsync.config.Settings).
  common_env = {
    CALSYNC_ENVIRONMENT                = var.environment
    CALSYNC_GCP_PROJECT                = var.project_id
    CALSYNC_REGION                     = var.region
    CALSYNC_CONTROL_CALENDAR_ID        = var.control_calendar_id
    CALSYNC_WEBHOOK_URL                = local.function_urls["webhook"]
    CALSYNC_SYNC_URL                   = local.function_urls["sync"]
    CALSYNC_RENEW_URL                  = local.function_urls["renew"]
    CALSYNC_PUBLISH_URL                = local.function_urls["publish"]
    CALSYNC_SYNC_QUEUE                 = google_cloud_tasks_queue.sync.name
    CALSYNC_PUBLISH_QUEUE              = google_cloud_tasks_queue.publish.name
    CALSYNC_TASKS_INVOKERS             = jsonencode({ for target, account in google_service_account.invoker : target => account.email })
    CALSYNC_FIRESTORE_DATABASE         = google_firestore_database.this.name
    CALSYNC_FIRESTORE_PUSH_DATABASE    = google_firestore_database.push.name
    CALSYNC_SECRETS_BACKEND            = "secret_manager"
    CALSYNC_CALENDAR_CREDENTIALS       = "delegated"
    CALSYNC_DELEGATION_SERVICE_ACCOUNT = google_service_account.calendar.email
    CALSYNC_DELEGATED_USER             = var.delegated_user
    CALSYNC_WRITERS                    = jsonencode(var.writers)
    CALSYNC_INVITE_PATIENTS            = jsonencode(var.invite_patients)
    CALSYNC_SECRET_OAUTH_CLIENT        = google_secret_manager_secret.this["oauth_client"].secret_id
    CALSYNC_SECRET_TOKEN_KEY           = var.enable_kms_token_key ? "" : google_secret_manager_secret.this["token_key"].secret_id
    CALSYNC_KMS_TOKEN_KEY              = var.enable_kms_token_key ? google_kms_crypto_key.token[0].id : ""
    CALSYNC_SECRET_ADMIN_TOKEN         = google_secret_manager_secret.this["admin_token"].secret_id
    CALSYNC_ADMIN_EMAILS               = jsonencode(var.admin_emails)
    CALSYNC_ADMIN_ID_TOKEN_AUDIENCES   = jsonencode(var.environment == "dev" ? var.admin_id_token_audiences : [])
    CALSYNC_RENEW_QUEUE                = google_cloud_tasks_queue.sync.name
    CALSYNC_POLL_INTERVAL_S            = tostring(local.poll_interval_s)
    CALSYNC_POLL_STALE_S               = tostring(local.poll_stale_s)
    CALSYNC_SYNC_PAST_DAYS             = tostring(var.sync_past_days)
    CALSYNC_LOG_LEVEL                  = "INFO"
  }

  labels = merge(var.labels, { app = "calsync", env = var.environment })
}

# One Cloud Tasks invoker per target: the account a task to sync carries cannot call publish or renew.
resource "google_service_account" "invoker" {
  for_each = toset(["sync", "renew", "publish"])

  project      = var.project_id
  account_id   = "${local.prefix}-inv-${each.key}"
  display_name = "calsync ${var.environment} Cloud Tasks invoker of ${each.key}"
  description  = "Identity whose OIDC token Cloud Tasks sends to the ${each.key} function only."
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${local.prefix}-scheduler"
  display_name = "calsync ${var.environment} Cloud Scheduler invoker"
  description  = "Identity whose OIDC token Cloud Scheduler sends to the renew function."
}

module "function" {
  source   = "../function"
  for_each = local.functions

  project_id            = var.project_id
  region                = var.region
  name                  = "${local.prefix}-${each.key}"
  description           = each.value.description
  entry_point           = each.value.entry_point
  source_zip            = "${var.bundle_dir}/${each.key}.zip"
  source_bucket         = google_storage_bucket.sources.name
  service_account_id    = "${local.prefix}-${each.key}"
  build_service_account = var.build_service_account
  env_vars              = local.common_env
  ingress               = each.value.ingress
  invoker_members       = each.value.invokers
  timeout_s             = each.value.timeout_s
  available_memory      = each.value.memory
  available_cpu         = each.value.cpu
  concurrency           = each.value.concurrency
  min_instances         = lookup(var.function_min_instances, each.key, 0)
  max_instances         = lookup(var.function_max_instances, each.key, each.value.max_instances)
  labels                = local.labels
}

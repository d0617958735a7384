/**
 * Cloud Scheduler jobs: all target the renew function with an OIDC token of the scheduler
 * account and a {"job": ...} body. Renewal must actually be scheduled (peers lost every push
 * channel when theirs was not): renew every 6 h keeps channels (7-day TTL) far from expiry.
 */

locals {
  # The poll job's period (the code names poll tasks per interval) and the age after which poll
  # syncs a calendar: under half the 1 h "no successful sync" alert, so a quiet calendar (no push)
  # still syncs often enough never to trip it.
  poll_interval_s = 600
  poll_stale_s    = 1800

  scheduler_jobs = {
    renew = {
      description = "Renew push channels that expire within the renewal margin."
      schedule    = "0 */6 * * *"
      body        = { job = "renew" }
    }
    poll = {
      description = "Backstop poll: enqueue an incremental sync of every calendar (pushes are not 100% reliable)."
      schedule    = "*/10 * * * *"
      body        = { job = "poll" }
    }
    cleanup = {
      description = "Daily cleanup: stop replaced channels, drop expired state."
      schedule    = "30 3 * * *"
      body        = { job = "cleanup" }
    }
    # Free/busy has no push: professionals' own calendars are compared with published allocations.
    availability = {
      description = "Professionals' own calendars (free/busy) against published allocations: busy_elsewhere conflicts."
      schedule    = "15 * * * *"
      body        = { job = "availability" }
    }
  }
}

resource "google_cloud_scheduler_job" "this" {
  for_each = local.scheduler_jobs

  project          = var.project_id
  region           = var.region
  name             = "${local.prefix}-${each.key}"
  description      = each.value.description
  schedule         = each.value.schedule
  time_zone        = var.scheduler_time_zone
  attempt_deadline = "600s"

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
    max_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = local.function_urls["renew"]
    body        = base64encode(jsonencode(each.value.body))
    headers = {
      "Content-Type" = "application/json"
    }

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.function_urls["renew"]
    }
  }

  depends_on = [module.function]
}

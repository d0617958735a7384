/**
 * Cloud Tasks queues. The sync queue is throttled from the Calendar API's per-user quota
 * (600 requests/min/user by default): one sync issues its Calendar calls one at a time, so
 * dispatching at half the per-user rate and keeping at most that many syncs in flight leaves the
 * other half for renew's watch calls and publishes; the adapter's backoff absorbs bursts.
 */

locals {
  calendar_requests_per_s = var.calendar_user_requests_per_minute / 60
}

resource "google_cloud_tasks_queue" "sync" {
  project  = var.project_id
  location = var.region
  name     = local.queue_names["sync"]

  rate_limits {
    max_dispatches_per_second = floor(local.calendar_requests_per_s / 2)
    max_concurrent_dispatches = floor(local.calendar_requests_per_s)
  }

  retry_config {
    max_attempts  = 10
    min_backoff   = "10s"
    max_backoff   = "600s"
    max_doublings = 5
  }

  stackdriver_logging_config {
    sampling_ratio = 0.1
  }
}

resource "google_cloud_tasks_queue" "publish" {
  project  = var.project_id
  location = var.region
  name     = local.queue_names["publish"]

  # Publishes are spread over time (a big publish must not eat the Calendar quota).
  rate_limits {
    max_dispatches_per_second = 1
    max_concurrent_dispatches = 1
  }

  retry_config {
    max_attempts  = 20
    min_backoff   = "30s"
    max_backoff   = "3600s"
    max_doublings = 6
  }

  stackdriver_logging_config {
    sampling_ratio = 1.0
  }
}
